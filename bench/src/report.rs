//! The table `bench all` prints: one row per figure with its ceiling and the ratio between them,
//! headed by the date and the commit, as markdown for BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

/// A measured quantity and its unit, so value and ceiling print alike.
#[derive(Debug, Clone, Copy)]
pub enum Figure {
    PerSecond(f64, &'static str),
    Time(Duration),
    Micros(f64),
    Count(u64),
    Mib(u64),
}

impl Figure {
    fn amount(self) -> f64 {
        match self {
            Figure::PerSecond(value, _) | Figure::Micros(value) => value,
            Figure::Time(duration) => duration.as_secs_f64(),
            Figure::Count(count) => count as f64,
            Figure::Mib(mib) => mib as f64,
        }
    }

    fn measured(self) -> bool {
        self.amount().is_finite()
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Figure::PerSecond(value, unit) => write!(f, "{} {unit}/s", grouped(value)),
            Figure::Time(duration) if duration >= Duration::from_secs(1) => {
                write!(f, "{:.2} s", duration.as_secs_f64())
            }
            Figure::Time(duration) => write!(f, "{:.2} ms", duration.as_secs_f64() * 1e3),
            Figure::Micros(value) => write!(f, "{value:.2} µs"),
            Figure::Count(count) => write!(f, "{count}"),
            Figure::Mib(mib) => write!(f, "{mib} MiB"),
        }
    }
}

/// A number rounded to a whole and grouped by thousands, as BENCHMARKS.md writes them.
pub fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// What a figure is set against.
#[derive(Debug, Clone)]
pub enum Ceiling {
    /// A figure of the same kind measured in the same run; the ratio is value / ceiling.
    Measured(Figure, String),
    /// Nothing to set it against; the text says why or what it is read with.
    None(String),
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend: &'static str,
    pub figure: String,
    /// `Err` holds why the figure was not measured in this run (skipped, or another branch's).
    pub value: Result<Figure, String>,
    pub ceiling: Ceiling,
}

/// The rows of one run.
#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

impl Table {
    pub fn measured(
        &mut self,
        backend: &'static str,
        figure: impl Into<String>,
        value: Figure,
        ceiling: Ceiling,
    ) {
        self.rows.push(Row {
            backend,
            figure: figure.into(),
            value: Ok(value),
            ceiling,
        });
    }

    pub fn not_measured(
        &mut self,
        backend: &'static str,
        figure: impl Into<String>,
        why: impl Into<String>,
    ) {
        self.rows.push(Row {
            backend,
            figure: figure.into(),
            value: Err(why.into()),
            ceiling: Ceiling::None(String::new()),
        });
    }

    /// Figures that came out as no number (NaN, infinite): a phase that measured nothing.
    pub fn unmeasured(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|row| row.value.as_ref().is_ok_and(|value| !value.measured()))
            .map(|row| row.figure.as_str())
            .collect()
    }

    pub fn markdown(&self, heading: &str) -> String {
        let mut out = format!(
            "{heading}\n\n| backend | figure | value | ceiling | ratio to ceiling |\n| --- | --- | --- | --- | --- |\n"
        );
        for row in &self.rows {
            let value = match &row.value {
                Ok(value) => value.to_string(),
                Err(why) => format!("— ({why})"),
            };
            let (ceiling, ratio) = match (&row.ceiling, &row.value) {
                (Ceiling::Measured(ceiling, what), Ok(value)) => (
                    format!("{ceiling} ({what})"),
                    format!("{:.2}", value.amount() / ceiling.amount()),
                ),
                (Ceiling::Measured(ceiling, what), Err(_)) => {
                    (format!("{ceiling} ({what})"), "—".into())
                }
                (Ceiling::None(what), _) => (what.clone(), "—".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {value} | {ceiling} | {ratio} |",
                row.backend, row.figure
            );
        }
        out
    }
}
