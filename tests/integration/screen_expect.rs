//! Expecting on the screen, not the stream: a real full-screen program
//! (whiptail's menu, drawn with cursor movement and box characters) read
//! through the session's virtual terminal, its cursor followed as the
//! selection moves; text drawn out of order found where it shows; the
//! script API (`expect_screen`, `screen`, `cursor`); and a recording of a
//! screen session replayed to the same result. Needs whiptail
//! (scripts/setup.sh installs it).

use std::process::Command;
use std::time::Duration;

use ec2_serial_expect::connect::{ConnectOptions, Console};
use ec2_serial_expect::{Pattern, Session, Target};

const BIN: &str = env!("CARGO_BIN_EXE_ec2-serial-expect");
/// whiptail's menu; the choice goes to stdout as `chose X`.
const MENU: &str = "c=$(whiptail --menu 'Pick a fruit' 12 40 3 a Apple b Banana c Cherry \
                    3>&1 1>&2 2>&3); echo chose $c; sleep 1";

async fn session(script: &str, size: (u16, u16)) -> Session {
    let target = Target::Exec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
    };
    let connect = ConnectOptions {
        size,
        ..ConnectOptions::default()
    };
    let mut s = Console::open(&target)
        .connect(connect)
        .session()
        .await
        .unwrap();
    s.watch_screen();
    s
}

fn row_of(screen: &str, text: &str) -> u16 {
    screen
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{text} not on the screen:\n{screen}")) as u16
}

#[tokio::test]
async fn a_real_menu_is_read_from_the_screen_and_its_cursor_followed() {
    assert!(
        Command::new("whiptail").arg("--version").output().is_ok(),
        "whiptail is needed: apt-get install whiptail (scripts/setup.sh)"
    );
    // The PTY is 200×50 (transport::PTY_SIZE); the screen must match it.
    let mut s = session(MENU, (200, 50)).await;
    let wait = Some(Duration::from_secs(10));
    s.expect_screen(
        &[Pattern::regex(r"Pick a fruit[\s\S]*Cherry[\s\S]*<Ok>")],
        wait,
    )
    .await
    .unwrap();
    let shown = s.screen();
    let (apple, banana) = (row_of(&shown, "a Apple"), row_of(&shown, "b Banana"));
    assert_eq!(banana, apple + 1, "{shown}");
    assert!(
        shown.contains('┌') || shown.contains('+'),
        "the box is drawn: {shown}"
    );
    assert_eq!(s.cursor().0, apple, "the cursor is on the first entry");
    s.send("\x1b[B").await.unwrap();
    let mut moved = false;
    for _ in 0..50 {
        let _ = s
            .expect_screen(
                &[Pattern::exact("never on this screen")],
                Some(Duration::from_millis(100)),
            )
            .await;
        if s.cursor().0 == banana {
            moved = true;
            break;
        }
    }
    assert!(moved, "Down moved the cursor to Banana: {:?}", s.cursor());
    s.send("\r").await.unwrap();
    s.expect_exact("chose b", wait).await.unwrap();
}

#[tokio::test]
async fn text_drawn_out_of_order_is_found_where_it_shows() {
    // "World" is written first, on row 3; "Hello" last, on row 1.
    let draw = r"printf '\033[2J\033[3;5HWorld\033[1;1HHello'; sleep 2";
    let mut s = session(draw, (200, 50)).await;
    let top_to_bottom = Pattern::regex(r"Hello[\s\S]*World");
    let m = s
        .expect_screen(
            std::slice::from_ref(&top_to_bottom),
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(m.groups[0].as_deref(), Some("Hello\n\n    World"));
    // In the stream the same pattern never matches: World came first.
    let mut s = session(draw, (200, 50)).await;
    assert!(s
        .expect(&[top_to_bottom], Some(Duration::from_millis(1500)))
        .await
        .is_err());
}

/// The script API, live and then replayed from the transcript it recorded.
#[test]
fn scripts_expect_on_the_screen_live_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("menu.rhai");
    std::fs::write(
        &script,
        r#"
expect_screen(["Pick a fruit[\\s\\S]*<Ok>"], 10);
let rows = screen().split("\n");
let apple = 0;
for i in 0..rows.len() { if rows[i].contains("a Apple") { apple = i; } }
if cursor()[0] != apple { fail(`cursor ${cursor()} not on Apple (row ${apple})`); }
send("\x1b[B");
send("\r");
let m = expect(["chose (\\w)"]);
log(`chose ${m.groups[1]}`);
"#,
    )
    .unwrap();
    let cast = dir.path().join("menu.cast");
    let target = format!("exec:sh -c \"{}\"", MENU.replace('"', "\\\""));
    let live = Command::new(BIN)
        .arg("--transcript")
        .arg(&cast)
        .args(["run", &target])
        .arg(&script)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&live.stderr);
    assert_eq!(live.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&live.stdout).trim(), "chose b");
    let replayed = Command::new(BIN)
        .args(["--no-transcript", "run"])
        .arg(format!("replay:{}", cast.display()))
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&replayed.stdout).trim(), "chose b");
}

/// A secret the screen wraps at its right margin is not shown in two
/// halves: `screen()` masks it (a 10-column screen, the secret 12 long).
#[tokio::test]
async fn a_secret_wrapped_across_rows_never_shows() {
    let mut s = session("printf 'hunter2-pass ok'; sleep 2", (10, 3)).await;
    s.add_secret(&ec2_serial_expect::Secret::new("pw", "hunter2-pass"));
    s.expect_screen(&[Pattern::exact("ok")], Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let shown = s.screen();
    assert!(
        !shown.contains("hunter2") && !shown.contains("ss ok"),
        "{shown}"
    );
    assert!(shown.contains("** ok"), "{shown}");
}
