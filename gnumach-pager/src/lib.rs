//! Host side of the GNU Mach default-pager demo: the built program, the kernel, and qemu.
//!
//! * [`PROGRAM`]: the no_std program (built by this crate's `build.rs` from `program/`;
//!   if that fails the rest of the workspace still builds, [`BUILD_ERROR`] says why and
//!   [`prepare`] reports it);
//! * [`prepare`]: finds `qemu-system-x86_64`, fetches Debian 13's
//!   `gnumach-image-1.8-amd64-up` into `target/debian13-kernel` (cached; see
//!   `.ci/fetch-debian13.sh`) and converts the kernel to the ELF32 qemu's multiboot loader
//!   accepts;
//! * [`boot`]: boots the kernel with the program as its boot-script module and a fresh
//!   paging-store image, under plain emulation (TCG) with a time limit, and collects the
//!   serial console;
//! * [`Outcome`]: what the console said — the `GNUMACH-PAGER:` lines the program prints,
//!   its `SUMMARY` fields and its `RESULT`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The program (a static x86_64 ELF for GNU Mach); empty if `build.rs` could not build it.
pub const PROGRAM: &str = env!("GNUMACH_PAGER_PROGRAM");

/// Why `build.rs` could not build the program (empty if it did).
pub const BUILD_ERROR: &str = env!("GNUMACH_PAGER_BUILD_ERROR");

/// The Debian 13 package with the kernel.
pub const KERNEL_PACKAGE: &str = "gnumach-image-1.8-amd64-up";

/// The prefix of every line the program prints for the host.
pub const TAG: &str = "GNUMACH-PAGER:";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gnumach-pager is inside the workspace")
        .to_path_buf()
}

/// What is needed to boot.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The program, loaded as the kernel's first task.
    pub program: PathBuf,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// The kernel, as ELF32 for qemu's multiboot loader.
    pub kernel: PathBuf,
    /// Where boots put their files (store images).
    pub work_dir: PathBuf,
}

/// Why [`prepare`] could not give a [`Machine`].
#[derive(Debug)]
pub enum Missing {
    /// The program was not built (`build.rs` says why).
    Program(String),
    /// `qemu-system-x86_64` is not on `PATH` (Debian: `apt-get install qemu-system-x86`).
    Qemu,
    /// The kernel package could not be fetched or converted (the message says why).
    Kernel(String),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Program(m) => write!(f, "the GNU Mach program was not built: {m}"),
            Missing::Qemu => f.write_str(
                "qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)",
            ),
            Missing::Kernel(m) => write!(f, "GNU Mach kernel unavailable: {m}"),
        }
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<(), Missing> {
    let out = cmd
        .output()
        .map_err(|e| Missing::Kernel(format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        Err(Missing::Kernel(format!(
            "{what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )))
    }
}

/// Finds qemu, fetches the kernel package (once) and converts the kernel (once).
pub fn prepare() -> Result<Machine, Missing> {
    if PROGRAM.is_empty() || !Path::new(PROGRAM).is_file() {
        return Err(Missing::Program(if BUILD_ERROR.is_empty() {
            format!(
                "{PROGRAM:?} does not exist (removed after the build? `touch \
                 gnumach-pager/build.rs` makes cargo build it again)"
            )
        } else {
            BUILD_ERROR.to_string()
        }));
    }
    let qemu = find_in_path("qemu-system-x86_64").ok_or(Missing::Qemu)?;
    let root = workspace_root();
    let pkg_dir = root.join("target/debian13-kernel");
    let gz = pkg_dir.join("root/boot/gnumach-1.8-amd64-up.gz");
    if !gz.is_file() {
        run_ok(
            Command::new("bash")
                .arg(root.join(".ci/fetch-debian13.sh"))
                .arg(&pkg_dir)
                .arg(KERNEL_PACKAGE),
            "fetch-debian13.sh",
        )?;
        if !gz.is_file() {
            return Err(Missing::Kernel(format!(
                "{} is missing after the fetch",
                gz.display()
            )));
        }
    }
    let work_dir = root.join("target/gnumach-pager/qemu");
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| Missing::Kernel(format!("cannot create {}: {e}", work_dir.display())))?;
    let kernel = work_dir.join("gnumach32");
    let fresh = |p: &Path| {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(p), m(&gz)), (Some(a), Some(b)) if a >= b)
    };
    // Tests boot in parallel threads and processes: one thread per process
    // converts at a time, and the files it writes carry the process id, so
    // the final rename is the only step another process can see.
    static CONVERT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = CONVERT.lock().unwrap_or_else(|e| e.into_inner());
    if !fresh(&kernel) {
        let pid = std::process::id();
        let elf64 = work_dir.join(format!("gnumach.{pid}.elf64"));
        let bytes = Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .output()
            .map_err(|e| Missing::Kernel(format!("cannot run gzip: {e}")))?;
        if !bytes.status.success() {
            return Err(Missing::Kernel(format!("gzip -dc {} failed", gz.display())));
        }
        std::fs::write(&elf64, &bytes.stdout)
            .map_err(|e| Missing::Kernel(format!("cannot write {}: {e}", elf64.display())))?;
        let tmp = work_dir.join(format!("gnumach32.{pid}.tmp"));
        run_ok(
            Command::new("objcopy")
                .args(["-O", "elf32-i386"])
                .arg(&elf64)
                .arg(&tmp),
            "objcopy -O elf32-i386",
        )?;
        let _ = std::fs::remove_file(&elf64);
        std::fs::rename(&tmp, &kernel)
            .map_err(|e| Missing::Kernel(format!("cannot rename {}: {e}", tmp.display())))?;
    }
    drop(guard);
    Ok(Machine {
        program: PathBuf::from(PROGRAM),
        qemu,
        kernel,
        work_dir,
    })
}

/// One boot.
#[derive(Clone, Debug)]
pub struct Boot {
    /// Guest RAM (`-m`), MiB.
    pub ram_mib: u32,
    /// Size of the paging-store image, MiB.
    pub store_mib: u32,
    /// After this long qemu is killed.
    pub timeout: Duration,
    /// The program's options (`mem=192`, `fault=…`, see the README).
    pub args: Vec<String>,
    /// Print the console as it comes.
    pub echo: bool,
}

impl Default for Boot {
    fn default() -> Self {
        Boot {
            ram_mib: 128,
            store_mib: 256,
            timeout: Duration::from_secs(600),
            args: Vec::new(),
            echo: false,
        }
    }
}

/// What a boot printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    /// Every console line, with the time since qemu started.
    pub lines: Vec<(Duration, String)>,
    /// qemu was killed at the time limit.
    pub timed_out: bool,
    /// qemu's exit status (None if killed).
    pub status: Option<ExitStatus>,
    /// From qemu's start to its end.
    pub elapsed: Duration,
}

impl Outcome {
    /// The `RESULT` line: `Ok(())` for `RESULT PASS…`, `Err(cause)` for `RESULT FAIL cause`,
    /// `None` if there was none.
    pub fn result(&self) -> Option<Result<(), String>> {
        self.lines.iter().find_map(|(_, l)| {
            let r = l.split_once(&format!("{TAG} RESULT "))?.1;
            Some(match r.strip_prefix("FAIL") {
                Some(cause) => Err(cause.trim().to_string()),
                None => Ok(()),
            })
        })
    }

    /// The `key=value` fields of the `SUMMARY` line.
    pub fn summary(&self) -> Option<BTreeMap<String, String>> {
        let (_, l) = self
            .lines
            .iter()
            .find(|(_, l)| l.contains(&format!("{TAG} SUMMARY ")))?;
        let s = l.split_once(&format!("{TAG} SUMMARY "))?.1;
        Some(
            s.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A `SUMMARY` field as a number (0 if absent).
    pub fn count(&self, key: &str) -> u64 {
        self.summary()
            .and_then(|m| m.get(key).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    }

    /// When the first line containing `needle` appeared.
    pub fn time_of(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    /// Whether any line contains `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        self.time_of(needle).is_some()
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        self.lines[start..]
            .iter()
            .map(|(t, l)| format!("[{:7.2}s] {l}", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Where the run stopped, for a timeout: the last line the program printed.
    pub fn last_program_line(&self) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find(|(_, l)| l.contains(TAG))
            .map(|(_, l)| l.as_str())
    }

    /// The machine halted on its own (qemu exited, not killed).
    pub fn halted(&self) -> bool {
        !self.timed_out && self.status.is_some()
    }
}

/// Boots the kernel with the program and a fresh store image; returns when qemu exits or
/// the time limit kills it.
pub fn boot(m: &Machine, b: &Boot) -> std::io::Result<Outcome> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let store = m
        .work_dir
        .join(format!("store-{}-{n}.img", std::process::id()));
    let f = std::fs::File::create(&store)?;
    f.set_len(u64::from(b.store_mib) << 20)?;
    drop(f);

    let mut module = format!("{} ${{host-port}} ${{device-port}}", m.program.display());
    for a in &b.args {
        module.push(' ');
        module.push_str(a);
    }
    module.push_str(" $(task-create) $(task-resume)");

    let start = Instant::now();
    let mut child = Command::new(&m.qemu)
        .args(["-M", "q35", "-accel", "tcg", "-nographic", "-no-reboot"])
        .args(["-m", &b.ram_mib.to_string()])
        .arg("-kernel")
        .arg(&m.kernel)
        .args(["-append", "console=com0"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=store,share=on,mem-path={},size={}M",
            store.display(),
            b.store_mib
        ))
        .args(["-device", "ivshmem-plain,memdev=store"])
        .arg("-initrd")
        .arg(&module)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

    let (tx, rx) = mpsc::channel::<(Duration, String)>();
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    let echo = b.echo;
    let reader = |r: Box<dyn Read + Send>, tx: mpsc::Sender<(Duration, String)>| {
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let l = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .replace('\r', "");
                        if echo {
                            println!("{l}");
                        }
                        if tx.send((start.elapsed(), l)).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let t_out = reader(Box::new(out), tx.clone());
    let t_err = reader(Box::new(err), tx);

    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() >= b.timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let _ = t_out.join();
    let _ = t_err.join();
    let lines: Vec<(Duration, String)> = rx.try_iter().collect();
    let _ = std::fs::remove_file(&store);
    Ok(Outcome {
        lines,
        timed_out,
        status,
        elapsed,
    })
}
