//! The integration tests, one binary: one link step instead of nineteen on
//! a 2-core machine, and one shared harness in [`support`].
//!
//! Tier 1 (needs nothing but this machine) is everything not `#[ignore]`d;
//! tier 2, the lab, is the tests ignored with a `lab: …` reason, which boot a
//! real Debian VM. `scripts/test.sh` runs tier 1 first, then the lab, so
//! the timing-sensitive local tests never share the CPU with QEMU.

mod support;

mod console_pty;
mod console_tests;
mod doctor_fleet;
mod doctor_replay;
mod ec2_lab;
mod ec2_standin;
mod engine_session;
mod json_cli;
mod lab_cli;
mod lab_console;
mod lab_doctor;
mod lab_fixtures_replay;
mod lab_gateway;
mod lab_prepare;
mod lab_rescue;
mod lab_scenarios;
mod lab_scripts;
mod library_use;
mod manual_cli;
mod play_cli;
mod progress_cli;
mod rescue_replay;
mod screen_expect;
mod script_api;
mod script_cli;
mod shell_exec;
mod shell_lab;
mod shell_replay;
mod trust_cli;
mod web_browser;
mod web_gateway;
mod websocket_gateway;
