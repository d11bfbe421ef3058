//! The asciicast file format: a JSON header line, then one JSON array
//! `[seconds, code, data]` per event. Unknown event codes are kept as
//! [`EventCode::Other`] and ignored by readers, as the format requires.
//!
//! We write v2 (what asciinema 2.x and most players read). We read v2 and
//! v3 (asciinema 3's default): v3 puts the size in `term.cols`/`term.rows`,
//! times each event from the one before it rather than from the start,
//! and allows `#` comment lines; a v3 file is read into the same [`Cast`]
//! (times from the start), so replays and `play` treat both alike.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The header line of a transcript.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Header {
    /// 2 when written; 2 or 3 when read.
    pub version: u8,
    /// Terminal columns.
    pub width: u16,
    /// Terminal rows.
    pub height: u16,
    /// Unix time the recording started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// What was recorded (the target, never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A title for players.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Pauses longer than this many seconds are played as this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_time_limit: Option<f64>,
    /// The recording's environment (we record `TERM` and `SHELL` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

/// The kind of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventCode {
    /// Console output (`o`).
    Output,
    /// What was sent (`i`).
    Input,
    /// A marker (`m`).
    Marker,
    /// A resize (`r`) or anything else: ignored.
    Other(String),
}

impl EventCode {
    /// The one-letter code written in the file.
    pub fn as_str(&self) -> &str {
        match self {
            EventCode::Output => "o",
            EventCode::Input => "i",
            EventCode::Marker => "m",
            EventCode::Other(s) => s,
        }
    }

    /// The code a file's one-letter `code` names.
    fn from_code(code: &str) -> EventCode {
        match code {
            "o" => EventCode::Output,
            "i" => EventCode::Input,
            "m" => EventCode::Marker,
            other => EventCode::Other(other.to_string()),
        }
    }
}

/// One event of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start of the recording.
    pub time: f64,
    /// What kind of event.
    pub code: EventCode,
    /// Its data.
    pub data: String,
}

/// A whole transcript read from a file.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The header line.
    pub header: Header,
    /// Every event in file order.
    pub events: Vec<Event>,
}

impl Cast {
    /// Reads and validates a transcript file.
    pub fn read(path: &Path) -> Result<Cast> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read transcript {}: {e}", path.display())))?;
        Cast::parse(&text)
            .map_err(|why| Error::usage(format!("transcript {}: {why}", path.display())))
    }

    /// Parses transcript text; errors name the line.
    pub fn parse(text: &str) -> std::result::Result<Cast, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines
            .next()
            .ok_or("the file is empty; expected an asciicast header line")?;
        let header = parse_header(first).map_err(|e| format!("line 1: {e}"))?;
        let relative = header.version == 3;
        let mut events = Vec::new();
        let mut last_time = 0.0;
        for (n, line) in lines {
            if relative && line.starts_with('#') {
                continue;
            }
            let mut event = parse_event(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            if relative {
                event.time += last_time;
            }
            if event.time + 1e-9 < last_time {
                return Err(format!(
                    "line {}: event time {} goes backwards (previous {last_time})",
                    n + 1,
                    event.time
                ));
            }
            last_time = event.time;
            events.push(event);
        }
        Ok(Cast { header, events })
    }
}

/// The header of the transcript at `path` (its first line only).
pub fn read_header(path: &Path) -> Result<Header> {
    use std::io::BufRead;
    let file = std::fs::File::open(path)
        .map_err(|e| Error::usage(format!("cannot read transcript {}: {e}", path.display())))?;
    let mut line = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| Error::usage(format!("cannot read transcript {}: {e}", path.display())))?;
    parse_header(&line)
        .map_err(|why| Error::usage(format!("transcript {}: line 1: {why}", path.display())))
}

fn parse_header(line: &str) -> std::result::Result<Header, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("header is not JSON: {e}"))?;
    let version = v.get("version").and_then(Value::as_u64);
    let dim = |at: &Value, k: &str| {
        at.get(k)
            .and_then(Value::as_u64)
            .map(|n| n.min(u16::MAX as u64) as u16)
    };
    let (width, height) = match version {
        Some(2) => (
            dim(&v, "width").ok_or("header lacks \"width\"")?,
            dim(&v, "height").ok_or("header lacks \"height\"")?,
        ),
        Some(3) => {
            let term = v.get("term").ok_or("a v3 header lacks \"term\"")?;
            (
                dim(term, "cols").ok_or("a v3 header lacks \"term\": {\"cols\"}")?,
                dim(term, "rows").ok_or("a v3 header lacks \"term\": {\"rows\"}")?,
            )
        }
        _ => {
            return Err(format!(
                "expected an asciicast v2 or v3 header (\"version\": 2 or 3), found {}",
                v.get("version")
                    .map_or("none".to_string(), |v| v.to_string())
            ))
        }
    };
    let env = v.get("env").and_then(Value::as_object).map(|m| {
        m.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect()
    });
    Ok(Header {
        version: version.unwrap_or(2) as u8,
        width,
        height,
        timestamp: v.get("timestamp").and_then(Value::as_u64),
        command: v.get("command").and_then(Value::as_str).map(str::to_string),
        title: v.get("title").and_then(Value::as_str).map(str::to_string),
        idle_time_limit: v.get("idle_time_limit").and_then(Value::as_f64),
        env,
    })
}

fn parse_event(line: &str) -> std::result::Result<Event, String> {
    // Straight into its three fields: by way of a `Value` an event cost four
    // allocations, and a replayed fleet reads ~250 events per target. A line
    // that does not fit is read again below, for the message that says why.
    if let Ok((time, code, data)) = serde_json::from_str::<(f64, &str, String)>(line) {
        if time >= 0.0 {
            return Ok(Event {
                time,
                code: EventCode::from_code(code),
                data,
            });
        }
    }
    let v: Value = serde_json::from_str(line).map_err(|e| format!("event is not JSON: {e}"))?;
    let arr = v
        .as_array()
        .filter(|a| a.len() == 3)
        .ok_or("expected an event [seconds, code, data]")?;
    let time = arr[0]
        .as_f64()
        .filter(|t| *t >= 0.0)
        .ok_or("event time must be a non-negative number")?;
    let code = EventCode::from_code(arr[1].as_str().ok_or("event code must be a string")?);
    let data = arr[2]
        .as_str()
        .ok_or("event data must be a string")?
        .to_string();
    Ok(Event { time, code, data })
}

/// Formats one event line (without the newline).
pub fn event_line(time: f64, code: &EventCode, data: &str) -> String {
    let t = (time * 1e6).round() / 1e6;
    serde_json::to_string(&(t, code.as_str(), data)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_unknown_codes() {
        let text = "{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"login: \"]\n[0.2,\"r\",\"100x30\"]\n[0.3,\"i\",\"root\\r\"]\n";
        let cast = Cast::parse(text).unwrap();
        assert_eq!(cast.events.len(), 3);
        assert_eq!(cast.events[1].code, EventCode::Other("r".into()));
        assert_eq!(
            event_line(0.3, &EventCode::Input, "root\r"),
            "[0.3,\"i\",\"root\\r\"]"
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        assert!(Cast::parse("").unwrap_err().contains("empty"));
        assert!(Cast::parse("{\"version\":1}")
            .unwrap_err()
            .contains("v2 or v3"));
        let e =
            Cast::parse("{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\"]\n").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any text: parsed or refused with a reason, never a panic.
            #[test]
            fn any_text_is_parsed_or_refused(text in "(\\{|\\}|\\[|\\]|\"|,|:|[0-9.e-]|version|o|i|m|\n| ){0,200}") {
                let _ = Cast::parse(&text);
            }

            /// Events written the way the recorder writes them read back the same.
            #[test]
            fn written_events_read_back(
                events in proptest::collection::vec((0u32..100_000, 0usize..3, "[ -~\r\né\u{1b}]{0,40}"), 0..20),
            ) {
                let mut text = String::from("{\"version\": 2, \"width\": 80, \"height\": 24}\n");
                let mut time = 0.0;
                let codes = [EventCode::Output, EventCode::Input, EventCode::Marker];
                for (step, code, data) in &events {
                    time += f64::from(*step) / 1000.0;
                    text.push_str(&event_line(time, &codes[*code], data));
                    text.push('\n');
                }
                let cast = Cast::parse(&text).unwrap();
                prop_assert_eq!(cast.events.len(), events.len());
                for (event, (_, code, data)) in cast.events.iter().zip(&events) {
                    prop_assert_eq!(&event.data, data);
                    prop_assert_eq!(&event.code, &codes[*code]);
                }
            }
        }
    }
}
