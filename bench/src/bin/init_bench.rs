//! Init time of each function binary (run by `make bench`): every binary is
//! started under a minimal local Lambda Runtime API — a server in this
//! program that notes when `GET /2018-06-01/runtime/invocation/next` first
//! arrives, i.e. when init is over — alternating with the hello-world
//! baseline, 9 rounds (`INIT_BENCH_ROUNDS` sets another count), each round
//! starting one binary later than the last. Printed: medians, their ratio
//! to each baseline, and the median of each round's ratio to the first
//! baseline (a round's starts are milliseconds apart, so a slower stretch
//! of the run moves that paired figure less) with a distribution-free 95 %
//! interval for it, and what that interval says of the target ratio
//! (`INIT_BENCH_TARGET`, default 1.3): met, missed, or undecided by this
//! run. A binary that reports an init error (or exits) is a failure, not a
//! measurement. Where valgrind is
//! installed, each binary's instructions from exec to the first `/next`
//! are counted too (callgrind, one start each).
//!
//!     init_bench HELLO_BINARY [hello_lambda_current_thread] FUNCTION_BINARY...
//!
//! A binary may be given as `LABEL=PATH` (shown and deployed under that
//! label), with a rules layer of its own as `LABEL=PATH,RULES_DIR`, and
//! with settings of its own after that (`,NAME=VALUE` each): an older build
//! next to the current one, say, each with the layer and settings it was
//! deployed with. Each binary is compared with the first
//! and with any other whose name starts with `hello_lambda`. Each start is of a copy written in one go
//! that round, as a deployment package is unpacked (see [`deploy`]).
//!
//! The functions get the settings of a local run (plain secrets, no secrets
//! path) with `INIT_BENCH_RULES` as the rules layer — `make bench` passes
//! the one `make rules-layer` builds, templates precompiled as deployed;
//! the default is examples/, compiled at start-up. Init reads settings,
//! loads the rules and templates, and builds the SDK clients, with no
//! network call. What a function logs in its first start is shown (a
//! warning that precompiled templates were not used, say).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nudge_aws::settings::local_start_env;
use nudge_bench::runtime_api::RuntimeApi;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Milliseconds from spawn to the first `/next`; with `log`, the child's
/// stdout (its log) and stderr go there.
fn init_ms(
    binary: &str,
    rules: &Path,
    env: &[(String, String)],
    log: Option<&Path>,
    api: &RuntimeApi,
) -> Result<f64, String> {
    api.clear();
    let (stdout, stderr) = match log {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            (Stdio::from(file.try_clone().map_err(|e| e.to_string())?), Stdio::from(file))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(local_start_env(api.addr(), rules))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{binary}: {e}"))?;
    let result = first_next(binary, &mut child, api, Duration::from_secs(20))
        .map(|at| at.duration_since(started).as_secs_f64() * 1000.0);
    let _ = child.kill();
    let _ = child.wait();
    // The kernel is still tearing the last process down after `wait`: a
    // start right behind it measured ~0.3 ms slower, which always fell on
    // the baseline, the first binary of each round.
    std::thread::sleep(SETTLE);
    result
}

/// When `child` (started as `binary`) first called `/next`; an init error,
/// an exit or no call within `timeout` is an error.
fn first_next(binary: &str, child: &mut Child, api: &RuntimeApi, timeout: Duration) -> Result<Instant, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if api.init_error() {
            return Err(format!("{binary}: reported an init error"));
        }
        if let Some(at) = api.first_next() {
            return Ok(at);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{binary}: exited during init ({status})"));
        }
        if Instant::now() > deadline {
            return Err(format!("{binary}: no /next within {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

const SETTLE: Duration = Duration::from_millis(100);

/// A new file in `dir` with `name` and `bytes` (a binary, read once at
/// start), written front to back in one `write` and synced, as a new
/// execution environment unpacks a deployment package before its cold
/// start. Every binary, the baselines too, is started from
/// such a copy, a fresh one each round. Measured here: a binary as the
/// linker leaves it sits in the page cache as single 4 KB pages, and its
/// start-up took its page faults one small page at a time (`track` 2.72 ms
/// as linked, 2.27 ms as a copy; `check`'s CPU time 2.76 → 1.73 ms); that
/// depended on how each file happened to be written, not on its code, and
/// made binaries of the same code differ by up to 0.5 ms. One copy kept for
/// all rounds still left each binary an offset of its own for the run
/// (same-code functions 1.16× and 1.33× in one run); a fresh copy per round
/// spreads that over the rounds, and is slower for every binary (hello
/// 2.4–2.7 ms against ~2.0 ms), as a file the kernel has not executed
/// before is.
fn deploy((name, bytes): &(std::ffi::OsString, Vec<u8>), dir: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join(name);
    // A new file, not last round's rewritten: its page cache starts afresh.
    let _ = std::fs::remove_file(&to);
    let written = std::fs::File::create(&to).and_then(|mut f| {
        use std::io::Write;
        f.write_all(bytes)?;
        f.sync_all()
    });
    written.map_err(|e| format!("{}: {e}", to.display()))?;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(to.display().to_string())
}

/// Instructions `binary` runs from exec to its first `/next`, counted by
/// callgrind: a figure this machine's noise does not move, for changes too
/// small for the timings to resolve. Valgrind hides some CPU extensions
/// (SHA among them), so code that uses them counts its software fallback.
fn init_instructions(binary: &str, rules: &Path, env: &[(String, String)], api: &RuntimeApi) -> Result<u64, String> {
    api.clear();
    let mut child = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null", binary])
        .env_clear()
        .envs(local_start_env(api.addr(), rules))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("valgrind {binary}: {e}"))?;
    let reached = first_next(binary, &mut child, api, Duration::from_secs(120));
    // SIGTERM, not SIGKILL: callgrind prints its count as the program ends.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().map_err(|e| format!("valgrind {binary}: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    reached.map_err(|e| format!("under valgrind, {e}\n{log}"))?;
    log.lines()
        .find_map(|l| l.split_once("I   refs:").map(|(_, n)| n.trim().replace(',', "")))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("valgrind {binary}: no instruction count\n{log}"))
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The median of values already [`sorted`].
fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// Where, in `n` values sorted, the bounds of a distribution-free 95 %
/// confidence interval for their median lie (0-based; `None` below 6
/// values): the k-th smallest and the k-th largest, k the largest with
/// P(Binomial(n, ½) < k) ≤ 2.5 %. It assumes only that rounds are
/// independent, not that the machine's noise is normal — it is not: a
/// start the other core delays is late by milliseconds.
fn median_interval_ranks(n: usize) -> Option<(usize, usize)> {
    let mut below = 0.0; // P(B < k), grown one k at a time
    let mut pmf = 0.5f64.powi(i32::try_from(n).ok()?); // P(B = k - 1)
    let mut best = None;
    for k in 1..=n / 2 {
        below += pmf;
        if 2.0 * below > 0.05 {
            break;
        }
        best = Some((k - 1, n - k));
        // P(B = k) from P(B = k - 1)
        pmf *= (n - (k - 1)) as f64 / k as f64;
    }
    best
}

/// The 95 % interval of the median of values already [`sorted`] (see
/// [`median_interval_ranks`]).
fn median_interval(sorted: &[f64]) -> Option<(f64, f64)> {
    median_interval_ranks(sorted.len()).map(|(lo, hi)| (sorted[lo], sorted[hi]))
}

/// What the interval of a binary's per-round ratio says of `target`.
fn verdict(interval: Option<(f64, f64)>, target: f64) -> String {
    match interval {
        None => "too few rounds".into(),
        Some((_, hi)) if hi <= target => format!("met (≤ {target})"),
        Some((lo, _)) if lo > target => format!("missed (> {target})"),
        Some(_) => format!("undecided ({target} inside the interval)"),
    }
}

/// One binary to start: `[LABEL=]PATH[,RULES_DIR[,NAME=VALUE...]]`.
struct Arg {
    label: String,
    path: String,
    rules: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Arg {
    fn parse(arg: &str) -> Arg {
        let mut parts = arg.split(',');
        let binary = parts.next().unwrap_or(arg);
        let rules = parts.next().map(PathBuf::from);
        let env = parts.filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let (label, path) = match binary.split_once('=') {
            Some((l, p)) => (l.to_owned(), p.to_owned()),
            None => {
                let name = Path::new(binary).file_name().and_then(|n| n.to_str()).unwrap_or(binary);
                (name.to_owned(), binary.to_owned())
            }
        };
        Arg { label, path, rules, env }
    }
}

fn main() -> Result<(), String> {
    let args: Vec<Arg> = std::env::args().skip(1).map(|a| Arg::parse(&a)).collect();
    if args.len() < 2 {
        return Err("usage: init_bench HELLO_BINARY [LABEL=]FUNCTION_BINARY[,RULES_DIR]...".into());
    }
    let binaries: Vec<String> = args.iter().map(|a| a.label.clone()).collect();
    let deployed = tempfile::tempdir().map_err(|e| e.to_string())?;
    // Each binary's name and bytes, read once: every round writes them anew.
    let packages = args
        .iter()
        .map(|a| Ok((a.label.clone().into(), std::fs::read(&a.path).map_err(|e| format!("{}: {e}", a.path))?)))
        .collect::<Result<Vec<_>, String>>()?;
    let api = RuntimeApi::start().map_err(|e| e.to_string())?;
    let mut times = vec![Vec::new(); binaries.len()];
    let rounds = match std::env::var("INIT_BENCH_ROUNDS") {
        Ok(n) => n.parse().ok().filter(|&n: &usize| n > 0).ok_or(format!("INIT_BENCH_ROUNDS={n}: not a count"))?,
        Err(_) => 9,
    };
    let target = match std::env::var("INIT_BENCH_TARGET") {
        Ok(t) => t.parse().ok().filter(|&t: &f64| t > 0.0).ok_or(format!("INIT_BENCH_TARGET={t}: not a ratio"))?,
        Err(_) => 1.3,
    };
    let rules = std::env::var_os("INIT_BENCH_RULES").map_or_else(|| repo().join("examples"), PathBuf::from);
    let has_compiled =
        rules.join("templates").join(nudge_app::bundle::COMPILED_DIR).join(nudge_app::bundle::MANIFEST).exists();
    println!("rules layer: {} (precompiled templates: {})", rules.display(), if has_compiled { "yes" } else { "no" });
    let log = std::env::temp_dir().join(format!("init_bench.{}.log", std::process::id()));
    for round in 0..rounds {
        // Fresh copies every round, written before any start of the round.
        let copies = packages.iter().map(|p| deploy(p, deployed.path())).collect::<Result<Vec<_>, _>>()?;
        std::thread::sleep(SETTLE);
        // Each round starts one binary later, so every binary takes every
        // place in the order equally often: a place that starts slower
        // (right after a particular other binary, say) biases none of them.
        for k in 0..binaries.len() {
            let i = (k + round) % binaries.len();
            let b = &binaries[i];
            let rules = args[i].rules.as_ref().unwrap_or(&rules);
            times[i].push(init_ms(&copies[i], rules, &args[i].env, (round == 0).then_some(log.as_path()), &api)?);
            if round == 0 {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                for line in said.lines().filter(|l| !l.trim().is_empty()) {
                    println!("{b}: {line}");
                }
            }
        }
    }
    let _ = std::fs::remove_file(&log);
    // Each start against the first baseline's start in the same round,
    // milliseconds apart: a paired figure, which a slower or faster stretch
    // of the run moves less than it moves the medians.
    let per_round: Vec<Vec<f64>> =
        times.iter().map(|t| sorted(t.iter().zip(&times[0]).map(|(a, b)| a / b).collect())).collect();
    let medians: Vec<f64> = times.into_iter().map(|t| median(&sorted(t))).collect();
    let names: Vec<&str> =
        binaries.iter().map(|b| Path::new(b).file_name().and_then(|n| n.to_str()).unwrap_or(b)).collect();
    // The first binary, and any other hello-world, is a baseline.
    let baselines: Vec<usize> = (0..names.len()).filter(|&i| i == 0 || names[i].starts_with("hello_lambda")).collect();
    let heads: String = baselines.iter().map(|&i| format!(" ratio to {} |", names[i])).collect();
    println!(
        "| binary | init ms (median of {rounds}) |{heads} median of per-round ratios to {} (95 % interval) | target |",
        names[0]
    );
    println!("|---|---|{}---|---|", "---|".repeat(baselines.len()));
    for (i, (name, m)) in names.iter().zip(&medians).enumerate() {
        let ratios: String = baselines.iter().map(|&b| format!(" {:.2} |", m / medians[b])).collect();
        let interval = median_interval(&per_round[i]);
        let shown = interval.map_or_else(|| "-".into(), |(lo, hi)| format!("{lo:.2}–{hi:.2}"));
        let judged = if baselines.contains(&i) { "baseline".into() } else { verdict(interval, target) };
        println!("| {name} | {m:.2} |{ratios} {:.2} ({shown}) | {judged} |", median(&per_round[i]));
    }
    if Command::new("valgrind").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()) {
        let counts = args
            .iter()
            .map(|a| init_instructions(&a.path, a.rules.as_ref().unwrap_or(&rules), &a.env, &api))
            .collect::<Result<Vec<u64>, String>>()?;
        println!();
        println!("| binary | instructions to the first /next (callgrind) | ratio to {} |", names[0]);
        println!("|---|---|---|");
        for (name, n) in names.iter().zip(&counts) {
            println!("| {name} | {n} | {:.2} |", *n as f64 / counts[0] as f64);
        }
    } else {
        println!("(valgrind not installed: no instruction counts)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_may_carry_a_label_and_a_rules_layer_of_its_own() {
        let a = Arg::parse("target/release/check");
        assert_eq!((a.label.as_str(), a.path.as_str(), a.rules), ("check", "target/release/check", None));
        let a = Arg::parse("check-before=/tmp/old/check,/tmp/old/rules,A=1,B=x=y");
        assert_eq!((a.label.as_str(), a.path.as_str()), ("check-before", "/tmp/old/check"));
        assert_eq!(a.rules, Some(PathBuf::from("/tmp/old/rules")));
        assert_eq!(a.env, [("A".to_owned(), "1".to_owned()), ("B".to_owned(), "x=y".to_owned())]);
    }

    #[test]
    fn median_interval_ranks_are_the_binomial_order_statistics() {
        // Checked against the binomial sums computed exactly (Python's math.comb).
        assert_eq!(median_interval_ranks(5), None, "five values cannot give 95 %");
        assert_eq!(median_interval_ranks(6), Some((0, 5)));
        assert_eq!(median_interval_ranks(9), Some((1, 7)));
        assert_eq!(median_interval_ranks(27), Some((7, 19)));
        assert_eq!(median_interval_ranks(41), Some((13, 27)));
        assert_eq!(median_interval_ranks(61), Some((22, 38)));
    }

    #[test]
    fn the_interval_covers_the_median_of_values_given_in_any_order() {
        let v = sorted((0..27).map(|i| f64::from((i * 11) % 27)).collect());
        assert_eq!(median_interval(&v), Some((7.0, 19.0)));
        assert_eq!(median(&v), 13.0);
    }

    #[test]
    fn a_target_is_met_missed_or_undecided_by_where_the_interval_lies() {
        assert_eq!(verdict(Some((1.1, 1.25)), 1.3), "met (≤ 1.3)");
        assert_eq!(verdict(Some((1.31, 1.5)), 1.3), "missed (> 1.3)");
        assert_eq!(verdict(Some((1.2, 1.4)), 1.3), "undecided (1.3 inside the interval)");
        assert_eq!(verdict(None, 1.3), "too few rounds");
    }
}
