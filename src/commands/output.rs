//! How the CLI talks to a person: spinners for slow steps, short colored status lines.
//!
//! Everything here goes to stderr, so stdout stays the command's result (and `--json`
//! output stays pure JSON). Color only on a terminal and never with `NO_COLOR`
//! (https://no-color.org); spinners only on a terminal; `--quiet` silences all of it but
//! errors.

use std::io::IsTerminal as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The CLI's output settings, from the global flags and the environment.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--quiet`: only errors and the command's result.
    pub quiet: bool,
    /// `--json`: the result is JSON on stdout; status lines are suppressed like `--quiet`.
    pub json: bool,
    /// Styles on stderr.
    color: bool,
    /// stderr is a terminal (spinners redraw in place).
    tty: bool,
}

const GREEN: Style = AnsiColor::Green.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

impl Output {
    /// Settings for this process.
    pub fn new(quiet: bool, json: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Self {
            quiet,
            json,
            color: tty && !no_color,
            tty,
        }
    }

    /// Whether stderr gets styles.
    pub fn colored(self) -> bool {
        self.color
    }

    /// Whether status lines are shown.
    fn chatty(self) -> bool {
        !self.quiet && !self.json
    }

    fn paint(self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// Bold text (names, URLs) inside a status line.
    pub fn bold(self, text: &str) -> String {
        self.paint(BOLD, text)
    }

    /// Dimmed text (details) inside a status line.
    pub fn dim(self, text: &str) -> String {
        self.paint(DIM, text)
    }

    /// `✓ message`.
    pub fn success(self, message: &str) {
        if self.chatty() {
            eprintln!("{} {message}", self.paint(GREEN, "✓"));
        }
    }

    /// A plain status line.
    pub fn info(self, message: &str) {
        if self.chatty() {
            eprintln!("{message}");
        }
    }

    /// A warning, shown even with `--quiet` or `--json` (it may explain a later failure;
    /// stderr is not the JSON stream).
    pub fn warn(self, message: &str) {
        eprintln!("{} {message}", self.paint(YELLOW, "warning:"));
    }

    /// An error line that does not end the command (e.g. a failed rebuild in `gureum dev`).
    pub fn error(self, message: &str) {
        eprintln!("{} {message}", self.paint(RED, "error:"));
    }

    /// A spinner with `message` while a slow step runs; finish it with [`Spinner::done`]
    /// or [`Spinner::fail`]. Hidden unless stderr is a terminal and output is chatty.
    pub fn spinner(self, message: &str) -> Spinner {
        let bar = if self.tty && self.chatty() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let template = if self.color {
                "{spinner:.cyan} {msg} {elapsed:.dim}"
            } else {
                "{spinner} {msg} {elapsed}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(message.to_string());
        Spinner { bar, output: self }
    }
}

/// A running step shown as a spinner (or not at all when hidden).
pub struct Spinner {
    bar: ProgressBar,
    output: Output,
}

impl Spinner {
    /// Replaces the message (e.g. the latest line of a build's output).
    pub fn set_message(&self, message: &str) {
        self.bar.set_message(message.to_string());
    }

    /// Whether the spinner is drawn (otherwise callers may print progress lines instead).
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Ends the step successfully with a `✓ message` line.
    pub fn done(self, message: &str) {
        self.bar.finish_and_clear();
        self.output.success(message);
    }

    /// Ends the step without a line; the caller reports the failure.
    pub fn fail(self) {
        self.bar.finish_and_clear();
    }
}
