"""The launcher: choose algo, env and profile, set steps and `section.key=value` overrides, see the
CLI's validation errors inline as you type, and start the run (its own process group, its own folder).
Nothing is created or started while the form is invalid."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from engine.errors import UsageError
from engine.launcher import Job, parse_steps, plan
from engine.profiles import list_profiles
from engine.trainers import TRAINERS
from envs import GAMES

if TYPE_CHECKING:
    from tui.app import TrainctlApp


class LauncherScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "launch", "Launch", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        profiles = list_profiles()
        with Vertical(classes="dialog launcher"):
            yield Static("[b]Launch a run[/b]", classes="question")
            with Horizontal(classes="field"):
                yield Label("algo", classes="field-label")
                yield Select([(a, a) for a in TRAINERS], value="ppo", allow_blank=False, id="algo", compact=True)
            with Horizontal(classes="field"):
                yield Label("env", classes="field-label")
                yield Select([(g, g) for g in GAMES], value="beastybar", allow_blank=False, id="env", compact=True)
            with Horizontal(classes="field"):
                yield Label("profile", classes="field-label")
                yield Select([(p, p) for p in profiles], value="balance" if "balance" in profiles else profiles[0],
                             allow_blank=False, id="profile", compact=True)
            with Horizontal(classes="field"):
                yield Label("steps", classes="field-label")
                yield Input(placeholder="from the profile (e.g. 2e6)", id="steps", compact=True)
            with Horizontal(classes="field"):
                yield Label("overrides", classes="field-label")
                yield Input(placeholder="section.key=value ... (e.g. ppo.batch_size=512)", id="overrides",
                            compact=True)
            yield Static(id="launch-check")
            with Horizontal(classes="buttons"):
                yield Button("Launch (^s)", id="launch", variant="success")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#algo", Select).focus()
        self.validate_form()

    def job(self) -> Job:
        """The form's job; UsageError for a steps value the CLI would refuse."""
        steps_text = self.query_one("#steps", Input).value.strip()
        try:
            steps = parse_steps(steps_text) if steps_text else None
        except UsageError as exc:
            raise UsageError(f"steps: {exc}") from None
        return Job(algo=str(self.query_one("#algo", Select).value), env=str(self.query_one("#env", Select).value),
                   profile=str(self.query_one("#profile", Select).value), steps=steps,
                   assignments=tuple(self.query_one("#overrides", Input).value.split()))

    def validate_form(self) -> Job | None:
        """Check the form as `trainctl run` would; show the error (or what would run). None if invalid."""
        check = self.query_one("#launch-check", Static)
        try:
            job = self.job()
            cfg = plan(job)
        except UsageError as exc:
            check.update(f"[b red]✗[/b red] {exc}")
            check.set_class(True, "error")
            return None
        check.update(f"[b green]✓[/b green] {cfg['run.algo']} on {cfg['run.env']}, profile {cfg.profile}: "
                     f"{cfg['run.total_steps']:,} steps, {cfg['env.num_envs']} envs, seed {cfg['run.seed']}")
        check.set_class(False, "error")
        return job

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate_form()

    def on_select_changed(self, _event: Select.Changed) -> None:
        self.validate_form()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_launch()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()
        else:
            self.dismiss(None)

    def action_launch(self) -> None:
        job = self.validate_form()
        if job is None:
            return
        app: TrainctlApp = self.app  # type: ignore[assignment]
        try:
            run_id = app.launch_run(job)
        except UsageError as exc:
            self.query_one("#launch-check", Static).update(f"[b red]✗[/b red] {exc}")
            return
        self.notify(f"launched {run_id}")
        self.dismiss(run_id)

    def action_cancel(self) -> None:
        self.dismiss(None)
