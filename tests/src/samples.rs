//! The benchmark's bookkeeping (`socks4-load`): every measurement of a figure
//! for a subject, taken once a round, summed up as the median with min–max.

use std::collections::BTreeMap;

/// Samples of each figure for each subject.
#[derive(Default)]
pub struct Samples(BTreeMap<(String, String), Vec<f64>>);

impl Samples {
    /// Records one measurement of `figure` for `subject`.
    pub fn add(&mut self, subject: &str, figure: &str, v: f64) {
        self.0
            .entry((subject.to_owned(), figure.to_owned()))
            .or_default()
            .push(v);
    }

    /// The median of `figure` for `subject`, if it was measured.
    pub fn median(&self, subject: &str, figure: &str) -> Option<f64> {
        let mut v = self
            .0
            .get(&(subject.to_owned(), figure.to_owned()))?
            .clone();
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }

    /// A table cell: "median (min–max)" with `decimals` decimals, the value
    /// alone for one sample, "–" for none.
    pub fn cell(&self, subject: &str, figure: &str, decimals: usize) -> String {
        let Some(v) = self.0.get(&(subject.to_owned(), figure.to_owned())) else {
            return "–".into();
        };
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        let (lo, mid, hi) = (v[0], v[v.len() / 2], v[v.len() - 1]);
        if v.len() == 1 {
            format!("{mid:.decimals$}")
        } else {
            format!("{mid:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
        }
    }
}
