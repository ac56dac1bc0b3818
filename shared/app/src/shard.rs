//! A replay on several threads, with the same decisions in the same order
//! as on one.
//!
//! People are independent: nothing one person does changes what is decided
//! for another. So the log's people are split into shards, and each shard is
//! replayed on its own thread. Who is the same person is only known at the
//! end of the log — a later `identify` can join a visitor to a customer seen
//! earlier under another alias — so a pre-pass joins every alias seen on one
//! message (union-find) before any shard starts, and each joined group goes
//! whole to one shard.
//!
//! Each shard then reads every message of the log in order: its own it
//! ingests, for the others it only moves time on ([`Replay::tick`]), so its
//! clock, its scheduler's notion of "now" and the moments its checks run
//! are those of a replay on one thread. Every decision is tagged with the
//! message before which it was made; a replay hands on each batch in a
//! canonical order (time, then profile), so sorting the shards' decisions
//! by (message, phase, time, profile, order made) gives the one-thread log.

use std::collections::HashMap;

use jiff::Timestamp;
use nudge_core::hash::stable_hash;
use nudge_core::{Decision, Event, Triggers};

use crate::attribution::Attribution;
use crate::identity::AliasKey;
use crate::replay::{Replay, Summary};
use crate::usecase::AppError;

/// One incoming message: the events applied as one step, and when it arrived.
#[derive(Debug)]
pub struct Message<'e> {
    pub events: Vec<&'e Event>,
    pub arrived: Timestamp,
}

/// Events in arrival order cut into messages, as
/// [`Replay::push_events`] cuts them ([`nudge_core::event::same_message`]);
/// each message arrives when its first event did.
pub fn messages<'e>(events: impl IntoIterator<Item = (&'e Event, Timestamp)>) -> Vec<Message<'e>> {
    let mut out: Vec<Message<'e>> = Vec::new();
    for (e, arrived) in events {
        match out.last_mut() {
            Some(m) if m.events.first().is_some_and(|first| nudge_core::event::same_message(first, e)) => {
                m.events.push(e)
            }
            _ => out.push(Message { events: vec![e], arrived }),
        }
    }
    out
}

/// Union-find over alias hashes.
#[derive(Default)]
struct People {
    node: HashMap<u64, u32>,
    parent: Vec<u32>,
    hash: Vec<u64>,
}

impl People {
    fn node(&mut self, h: u64) -> u32 {
        let next = self.parent.len() as u32;
        let n = *self.node.entry(h).or_insert(next);
        if n == next {
            self.parent.push(n);
            self.hash.push(h);
        }
        n
    }

    fn root(&mut self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            let grandparent = self.parent[self.parent[n as usize] as usize];
            self.parent[n as usize] = grandparent;
            n = grandparent;
        }
        n
    }

    fn join(&mut self, a: u32, b: u32) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            // The older node stays the root: the result does not depend
            // on which alias of a message comes first.
            let (keep, gone) = if a < b { (a, b) } else { (b, a) };
            self.parent[gone as usize] = keep;
        }
    }
}

/// The shard (0..`shards`) of each message. Every alias of a message (the
/// first event's identity, as ingest resolves it) is joined with the
/// others; a group of joined aliases is one or more people who may merge,
/// and all their messages go to one shard, picked by a hash of the group's
/// first alias. Messages without an alias (ingest ignores them) go to 0.
pub fn assign(messages: &[Message<'_>], shards: usize) -> Vec<u32> {
    let shards = shards.max(1) as u64;
    let mut people = People::default();
    let firsts: Vec<Option<u32>> = messages
        .iter()
        .map(|m| {
            let e = m.events.first()?;
            let hashes = crate::identity::alias_hashes(&e.shop, &e.identity);
            let first = people.node(*hashes.first()?);
            for &h in &hashes[1..] {
                let n = people.node(h);
                people.join(first, n);
            }
            Some(first)
        })
        .collect();
    firsts
        .into_iter()
        .map(|n| match n {
            Some(n) => {
                let root = people.root(n);
                (stable_hash(&[&people.hash[root as usize].to_le_bytes()]) % shards) as u32
            }
            None => 0,
        })
        .collect()
}

/// What a replay on several threads gives: each decision as `each` made it,
/// in the order of a replay on one thread, and the shards' summaries and
/// attributions added up.
pub struct Sharded<T> {
    pub decisions: Vec<T>,
    pub summary: Summary,
    pub attribution: Attribution,
}

/// Where a decision stands in the one-thread log (see the module docs).
type Place = (u32, u8, Timestamp, String, u32);

/// What one shard gives: its decisions with their places, its counts.
type ShardResult<T> = Result<(Vec<(Place, T)>, Summary, Attribution), AppError>;

/// Replays `messages` on `threads` threads (one shard each). `setup`
/// prepares each shard's replay (its scheduler's lead, say); `each` turns a
/// decision into what the caller keeps of it (its JSON line, say) on the
/// shard's thread.
pub fn replay<T: Send>(
    rules: &Triggers,
    alias_key: &AliasKey,
    messages: &[Message<'_>],
    threads: usize,
    setup: &(dyn Fn(&mut Replay<'_>) + Sync),
    each: &(dyn Fn(&Decision) -> T + Sync),
) -> Result<Sharded<T>, AppError> {
    let threads = threads.max(1);
    let shard_of = assign(messages, threads);
    let run = |me: u32| -> ShardResult<T> {
        let mut r = Replay::new(rules, alias_key.clone());
        setup(&mut r);
        let mut out: Vec<(Place, T)> = Vec::new();
        let mut made = 0u32;
        let mut keep = |slot: u32, phase: u8, d: &Decision| {
            out.push(((slot, phase, d.at, d.profile.clone(), made), each(d)));
            made += 1;
        };
        for (i, m) in messages.iter().enumerate() {
            let slot = i as u32;
            r.tick(m.arrived, &mut |d| keep(slot, 0, d))?;
            if shard_of[i] == me {
                r.ingest_message(&m.events, &mut |d| keep(slot, 1, d))?;
            }
        }
        r.finish(&mut |d| keep(messages.len() as u32, 0, d))?;
        let summary = r.summary().clone();
        // Freeing every profile one by one is slower than leaving it to
        // the process's exit; the attribution is all that is kept.
        let attribution = r.take_attribution();
        std::mem::forget(r);
        Ok((out, summary, attribution))
    };
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads as u32).map(|me| s.spawn(move || run(me))).collect();
        let mut results = vec![run(0)];
        results.extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))));
        results
    });
    let mut all: Vec<(Place, T)> = Vec::new();
    let mut summary = Summary::default();
    let mut attribution: Option<Attribution> = None;
    for r in results {
        let (decisions, s, a) = r?;
        all.extend(decisions);
        summary.add(&s);
        match &mut attribution {
            Some(total) => total.add(a),
            None => attribution = Some(a),
        }
    }
    // Places are distinct: one person's decisions are in one shard, where
    // the order made tells them apart.
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Sharded {
        decisions: all.into_iter().map(|(_, t)| t).collect(),
        summary,
        attribution: attribution.unwrap_or_else(|| Attribution::new(crate::attribution::DEFAULT_WINDOW)),
    })
}
