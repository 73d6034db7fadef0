//! Which epochs get a full weight snapshot (and the conditional tables computed from it).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A set of epochs, written as a comma-separated list of epoch numbers, `every:N` (multiples of
/// N, epoch 0 included), `last` (the last epoch run, also when a run stops early) or `none`.
///
/// ```
/// use drift_analysis::SnapshotSchedule;
/// let s: SnapshotSchedule = "0,5,every:100,last".parse().unwrap();
/// assert!(s.contains(5, 1000) && s.contains(300, 1000) && !s.contains(6, 1000));
/// assert!(s.contains(1000, 1000) && s.contains(7, 7));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSchedule {
    epochs: BTreeSet<u32>,
    every: Option<u32>,
    last: bool,
}

impl Default for SnapshotSchedule {
    /// `0,1,2,5,10,20,50,100,200,500,1000,last`: dense early, when weights move fastest.
    fn default() -> Self {
        SnapshotSchedule { epochs: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].into(), every: None, last: true }
    }
}

impl SnapshotSchedule {
    /// Whether epoch `epoch` of a run of `last_epoch` epochs is snapshotted.
    pub fn contains(&self, epoch: u32, last_epoch: u32) -> bool {
        self.epochs.contains(&epoch)
            || self.every.is_some_and(|n| epoch.is_multiple_of(n))
            || (self.last && epoch == last_epoch)
    }

    /// The listed epochs past a run of `epochs` epochs (never reached).
    pub fn listed_after(&self, epochs: u32) -> Vec<u32> {
        self.epochs.range(epochs.saturating_add(1)..).copied().collect()
    }

    /// Whether the schedule names epochs yet none of a run of `epochs` epochs (`none` names none
    /// on purpose and is not such a schedule).
    pub fn selects_nothing(&self, epochs: u32) -> bool {
        !self.epochs.is_empty()
            && self.every.is_none()
            && !self.last
            && self.listed_after(epochs).len() == self.epochs.len()
    }

    /// Whether the last epoch actually run (which may come early) is snapshotted.
    pub fn wants_last(&self) -> bool {
        self.last
    }
}

/// An item of a snapshot schedule that is not one.
#[derive(Debug, thiserror::Error)]
#[error("'{item}': expected {expected}")]
pub struct ScheduleError {
    pub item: String,
    pub expected: &'static str,
}

impl FromStr for SnapshotSchedule {
    type Err = ScheduleError;
    fn from_str(spec: &str) -> Result<Self, ScheduleError> {
        let mut s = SnapshotSchedule { epochs: BTreeSet::new(), every: None, last: false };
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "last" => s.last = true,
                "none" => {}
                _ => {
                    if let Some(n) = item.strip_prefix("every:") {
                        match n.parse::<u32>() {
                            Ok(n) if n > 0 => s.every = Some(n),
                            _ => {
                                let expected = "every:N with N a positive integer";
                                return Err(ScheduleError { item: item.into(), expected });
                            }
                        }
                    } else {
                        let e = item.parse::<u32>().map_err(|_| ScheduleError {
                            item: item.into(),
                            expected: "an epoch number, every:N, last or none",
                        })?;
                        s.epochs.insert(e);
                    }
                }
            }
        }
        Ok(s)
    }
}

impl fmt::Display for SnapshotSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = self.epochs.iter().map(u32::to_string).collect();
        items.extend(self.every.map(|n| format!("every:{n}")));
        if self.last {
            items.push("last".into());
        }
        if items.is_empty() {
            items.push("none".into());
        }
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        for spec in ["0,1,2,5,10,20,50,100,200,500,1000,last", "every:10", "none", "3,last"] {
            assert_eq!(spec.parse::<SnapshotSchedule>().unwrap().to_string(), spec);
        }
        assert_eq!(SnapshotSchedule::default().to_string(), "0,1,2,5,10,20,50,100,200,500,1000,last");
    }

    #[test]
    fn bad_items_are_named() {
        assert!("1,x".parse::<SnapshotSchedule>().unwrap_err().to_string().contains("'x'"));
        assert!("every:0".parse::<SnapshotSchedule>().unwrap_err().to_string().contains("every:0"));
    }
}
