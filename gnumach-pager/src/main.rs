//! `gnumach-pager-qemu [--ram MiB] [--store MiB] [--timeout SECONDS] [--quiet] [OPTION=VALUE…]`
//!
//! Boots Debian 13's GNU Mach in qemu (TCG) with the default-pager program as its first
//! task, prints the serial console, and exits with 0 when the program says
//! `RESULT PASS`, 1 for `RESULT FAIL`, 2 when it printed no result (timeout, crash), and
//! 3 when qemu or the kernel is unavailable. `OPTION=VALUE`s go to the program (`mem=`,
//! `write-every=`, `store=`, `store-limit=`, `fault=`, `stall=`, `trace=`; see the README).
use gnumach_pager::{boot, prepare, Boot, TAG};
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: gnumach-pager-qemu [--ram MiB] [--store MiB] [--timeout SECONDS] [--quiet] [OPTION=VALUE…]"
    );
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let mut b = Boot {
        echo: true,
        ..Boot::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> Option<u64> {
            let v = args.next()?;
            v.parse().ok().or_else(|| {
                eprintln!("{what} needs a number, not {v:?}");
                None
            })
        };
        match a.as_str() {
            "--ram" => match num("--ram") {
                Some(n) => b.ram_mib = n as u32,
                None => return usage(),
            },
            "--store" => match num("--store") {
                Some(n) => b.store_mib = n as u32,
                None => return usage(),
            },
            "--timeout" => match num("--timeout") {
                Some(n) => b.timeout = Duration::from_secs(n),
                None => return usage(),
            },
            "--quiet" => b.echo = false,
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            s if s.contains('=') && !s.starts_with('-') => b.args.push(a),
            _ => return usage(),
        }
    }
    let m = match prepare() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("gnumach-pager-qemu: {e}");
            return ExitCode::from(3);
        }
    };
    eprintln!(
        "gnumach-pager-qemu: booting {} with {} MiB RAM, a {} MiB store image, time limit {} s",
        m.kernel.display(),
        b.ram_mib,
        b.store_mib,
        b.timeout.as_secs()
    );
    let o = match boot(&m, &b) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gnumach-pager-qemu: cannot run qemu: {e}");
            return ExitCode::from(3);
        }
    };
    if !b.echo {
        for (_, l) in o.lines.iter().filter(|(_, l)| l.contains(TAG)) {
            println!("{l}");
        }
    }
    let at = |needle: &str| {
        o.time_of(needle)
            .map_or_else(|| "-".to_string(), |t| format!("{:.2} s", t.as_secs_f64()))
    };
    eprintln!(
        "gnumach-pager-qemu: kernel to first task {}, pager registered {}, worker done {}, qemu ended {:.2} s{}",
        at(" started: pager task"),
        at("registered as the default memory manager"),
        at("worker done:"),
        o.elapsed.as_secs_f64(),
        if o.timed_out { " (killed at the time limit)" } else { "" }
    );
    match o.result() {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(cause)) => {
            eprintln!("gnumach-pager-qemu: FAIL: {cause}");
            ExitCode::from(1)
        }
        None => {
            eprintln!(
                "gnumach-pager-qemu: no result; stopped after: {}\nlast console lines:\n{}",
                o.last_program_line()
                    .unwrap_or("(the program printed nothing)"),
                o.tail(15)
            );
            ExitCode::from(2)
        }
    }
}
