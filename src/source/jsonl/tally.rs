//! Adds events up into rows: the JSONL source's `sum by (…)`.
//!
//! Each worker thread keeps its own `Tally` and they are merged at the end, so nothing is
//! shared while reading. Memory grows with the distinct sessions, models, agents and
//! variants, never with the number of events. Every sum is an integer (see `Usd`), so the
//! merge order cannot change a digit of the result.
//!
//! Consecutive lines of a file nearly always share their session, agent, model and
//! variant, so each lookup first compares with the previous line's string ([`Recent`])
//! before hashing: on the benchmark this took the tally from about a third of the time
//! per event (hash lookups in a map of 400 k sessions miss the cache) to a few percent.

use std::hash::BuildHasher;

use chrono::NaiveDate;
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};

use super::line::{Event, EventKind};
use crate::digest::{AgentRow, DayRow, ModelRow, Rows, SessionRow, Totals, VariantRow, VariantSpread};
use crate::usd::Usd;
use crate::window::{Nanos, Window};

/// A string's number in one tally. `NONE` stands for "no value" (an event without an
/// experiment, a session not yet seen in the window).
type Id = u32;
const NONE: Id = Id::MAX;

#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, Id>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, name: &str) -> Id {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as Id;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// `id`, remembering the answer in `recent` for the next line.
    fn recent_id(&mut self, recent: &mut Recent, name: &str) -> Id {
        recent.get(name).unwrap_or_else(|| {
            let id = self.id(name);
            recent.set(name, id);
            id
        })
    }

    fn recent_opt_id(&mut self, recent: &mut Recent, name: Option<&str>) -> Id {
        name.map_or(NONE, |n| self.recent_id(recent, n))
    }

    fn name(&self, id: Id) -> Option<&str> {
        self.names.get(id as usize).map(|n| &**n)
    }
}

/// The last string looked up in one role (agent, model, session…) and its id. The string
/// buffer is reused, so remembering allocates nothing once it is large enough.
#[derive(Default)]
struct Recent {
    name: String,
    id: Option<Id>,
}

impl Recent {
    fn get(&self, name: &str) -> Option<Id> {
        self.id.filter(|_| self.name == name)
    }

    fn set(&mut self, name: &str, id: Id) {
        self.name.clear();
        self.name.push_str(name);
        self.id = Some(id);
    }
}

/// The recent lookups of one tally, one per role.
#[derive(Default)]
struct RecentIds {
    agent: Recent,
    experiment: Recent,
    variant: Recent,
    model: Recent,
    provider: Recent,
    /// The (experiment, variant) pair of the last line and its id.
    variant_pair: Option<((Id, Id), Id)>,
}

/// The sessions seen, by key: numbered in order of appearance, their keys end to end in
/// one string and their figures in one `Vec`, with a hash table from key to number. So
/// the last session's number can be remembered across lines; growing the table never
/// rereads a key (the hash is stored); a merge walks the other tally's sessions in order;
/// and 400 k sessions are three allocations, not 400 k.
#[derive(Default)]
struct Sessions {
    /// `(hash of the key, session number)`.
    table: HashTable<(u64, Id)>,
    hasher: DefaultHashBuilder,
    /// Session `i`'s key is `keys[ends[i - 1]..ends[i]]` (from 0 for the first).
    keys: String,
    ends: Vec<usize>,
    accs: Vec<SessionAcc>,
    recent: Recent,
}

impl Sessions {
    fn len(&self) -> usize {
        self.accs.len()
    }

    fn key(&self, id: usize) -> &str {
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.keys[start..self.ends[id]]
    }

    fn find(&self, hash: u64, key: &str) -> Option<Id> {
        self.table.find(hash, |&(h, id)| h == hash && self.key(id as usize) == key).map(|&(_, id)| id)
    }

    fn get_mut(&mut self, key: &str) -> &mut SessionAcc {
        let id = match self.recent.get(key) {
            Some(id) => id,
            None => {
                let hash = self.hasher.hash_one(key);
                let id = self.find(hash, key).unwrap_or_else(|| {
                    let id = self.accs.len() as Id;
                    self.keys.push_str(key);
                    self.ends.push(self.keys.len());
                    self.accs.push(SessionAcc::default());
                    self.table.insert_unique(hash, (hash, id), |&(h, _)| h);
                    id
                });
                self.recent.set(key, id);
                id
            }
        };
        &mut self.accs[id as usize]
    }

    fn get(&self, key: &str) -> Option<&SessionAcc> {
        let id = self.find(self.hasher.hash_one(key), key)?;
        self.accs.get(id as usize)
    }

    /// Room for `more` sessions, so a merge grows the table once.
    fn reserve(&mut self, more: usize) {
        self.table.reserve(more, |&(h, _)| h);
        self.accs.reserve(more);
        self.ends.reserve(more);
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &SessionAcc)> {
        self.accs.iter().enumerate().map(|(id, acc)| (self.key(id), acc))
    }

    fn values(&self) -> impl Iterator<Item = &SessionAcc> {
        self.accs.iter()
    }
}

/// Cost of a group of model calls: the known part, and how many calls had none.
#[derive(Clone, Copy, Default)]
struct Cost {
    known: Usd,
    costed: u64,
    uncosted: u64,
}

impl Cost {
    fn add(&mut self, cost: Option<Usd>) {
        match cost {
            Some(c) => {
                self.known += c;
                self.costed += 1;
            }
            None => self.uncosted += 1,
        }
    }

    fn merge(&mut self, other: Cost) {
        self.known += other.known;
        self.costed += other.costed;
        self.uncosted += other.uncosted;
    }

    /// Unknown only when every call lacked a cost; a group with no calls cost nothing.
    fn value(self) -> Option<Usd> {
        (self.costed > 0 || self.uncosted == 0).then_some(self.known)
    }
}

#[derive(Clone, Default)]
struct Counters {
    cost: Cost,
    input_tokens: u64,
    output_tokens: u64,
    model_calls: u64,
    errors: u64,
    tool_calls: u64,
    tool_failures: u64,
    events: u64,
}

impl Counters {
    fn add(&mut self, e: &Event) {
        self.events += 1;
        match e.kind {
            EventKind::ModelCall => {
                self.cost.add(e.cost);
                self.model_calls += 1;
                self.input_tokens += e.input_tokens;
                self.output_tokens += e.output_tokens;
            }
            EventKind::ToolCall => {
                self.tool_calls += 1;
                self.tool_failures += u64::from(e.failed);
            }
            EventKind::RunEnd => self.errors += u64::from(e.failed),
            EventKind::Other => {}
        }
    }

    fn merge(&mut self, o: &Counters) {
        self.cost.merge(o.cost);
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.model_calls += o.model_calls;
        self.errors += o.errors;
        self.tool_calls += o.tool_calls;
        self.tool_failures += o.tool_failures;
        self.events += o.events;
    }

    fn totals(&self, sessions: u64) -> Totals {
        Totals {
            cost: self.cost.known,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            sessions,
            model_calls: Some(self.model_calls),
            errors: Some(self.errors),
            runs: None,
            tool_calls: Some(self.tool_calls),
            tool_failures: Some(self.tool_failures),
            uncosted_events: Some(self.cost.uncosted),
            events: Some(self.events),
            model_errors: None,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct ModelAcc {
    cost: Cost,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Clone, Copy, Default)]
struct GroupAcc {
    cost: Cost,
    errors: u64,
}

impl GroupAcc {
    fn add(&mut self, e: &Event) {
        if e.kind == EventKind::ModelCall {
            self.cost.add(e.cost);
        }
        if e.kind == EventKind::RunEnd && e.failed {
            self.errors += 1;
        }
    }

    fn merge(&mut self, o: GroupAcc) {
        self.cost.merge(o.cost);
        self.errors += o.errors;
    }
}

/// A session's figures in the window, and whether it shows up in either window at all.
#[derive(Clone, Copy)]
struct SessionAcc {
    in_window: bool,
    in_previous: bool,
    /// The first agent and variant seen in the window; further ones go to `extra_tags`.
    agent: Id,
    variant: Id,
    cost: Cost,
    input_tokens: u64,
    output_tokens: u64,
    model_calls: u64,
}

impl Default for SessionAcc {
    fn default() -> Self {
        SessionAcc {
            in_window: false,
            in_previous: false,
            agent: NONE,
            variant: NONE,
            cost: Cost::default(),
            input_tokens: 0,
            output_tokens: 0,
            model_calls: 0,
        }
    }
}

/// A second agent or variant of one session (rare): kept aside so that distinct-session
/// counts stay exact without a set in every session.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Tag {
    Agent(Id),
    Variant(Id),
}

pub struct Tally {
    window: (Nanos, Nanos),
    previous: Option<(Nanos, Nanos)>,
    days: Vec<NaiveDate>,
    day_starts: Vec<Nanos>,
    names: Interner,
    current: Counters,
    prior: Counters,
    models: HashMap<(Id, Id), ModelAcc>,
    agents: HashMap<Id, GroupAcc>,
    /// Keyed by the id of an (experiment, variant) pair in `variant_pairs`.
    variants: HashMap<Id, GroupAcc>,
    variant_pairs: HashMap<(Id, Id), Id>,
    variant_list: Vec<(Id, Id)>,
    sessions: Sessions,
    recent: RecentIds,
    extra_tags: HashSet<(Box<str>, Tag)>,
    daily: Vec<Usd>,
}

impl Tally {
    pub fn new(window: &Window, previous: Option<&Window>) -> Tally {
        let (days, day_starts): (Vec<NaiveDate>, Vec<Nanos>) = window.days().into_iter().unzip();
        Tally::with_days((window.start, window.end), previous.map(|p| (p.start, p.end)), days, day_starts)
    }

    fn with_days(
        window: (Nanos, Nanos),
        previous: Option<(Nanos, Nanos)>,
        days: Vec<NaiveDate>,
        day_starts: Vec<Nanos>,
    ) -> Tally {
        Tally {
            window,
            previous,
            daily: vec![Usd::ZERO; day_starts.len()],
            days,
            day_starts,
            names: Interner::default(),
            current: Counters::default(),
            prior: Counters::default(),
            models: HashMap::new(),
            agents: HashMap::new(),
            variants: HashMap::new(),
            variant_pairs: HashMap::new(),
            variant_list: Vec::new(),
            sessions: Sessions::default(),
            recent: RecentIds::default(),
            extra_tags: HashSet::new(),
        }
    }

    /// A tally for another thread: same windows, nothing counted.
    pub fn empty_like(&self) -> Tally {
        Tally::with_days(self.window, self.previous, self.days.clone(), self.day_starts.clone())
    }

    /// The span of time whose events matter: the window and the previous one.
    pub fn span(&self) -> (Nanos, Nanos) {
        match self.previous {
            Some((start, end)) => (start.min(self.window.0), end.max(self.window.1)),
            None => self.window,
        }
    }

    pub fn add(&mut self, e: &Event) {
        if self.window.0 <= e.time && e.time < self.window.1 {
            self.add_current(e);
        } else if matches!(self.previous, Some((s, end)) if s <= e.time && e.time < end) {
            self.prior.add(e);
            if let Some(session) = &e.session {
                self.sessions.get_mut(session).in_previous = true;
            }
        }
    }

    fn add_current(&mut self, e: &Event) {
        self.current.add(e);
        let recent = &mut self.recent;
        let agent = self.names.recent_id(&mut recent.agent, &e.agent);
        let experiment = self.names.recent_opt_id(&mut recent.experiment, e.experiment.as_deref());
        let variant_name = self.names.recent_opt_id(&mut recent.variant, e.variant.as_deref());
        let variant = match recent.variant_pair {
            Some((pair, id)) if pair == (experiment, variant_name) => id,
            _ => {
                let id = self.variant_id(experiment, variant_name);
                self.recent.variant_pair = Some(((experiment, variant_name), id));
                id
            }
        };
        self.agents.entry(agent).or_default().add(e);
        self.variants.entry(variant).or_default().add(e);
        if e.kind == EventKind::ModelCall {
            let key = (
                self.names.recent_id(&mut self.recent.model, &e.model),
                self.names.recent_id(&mut self.recent.provider, &e.provider),
            );
            let m = self.models.entry(key).or_default();
            m.cost.add(e.cost);
            m.input_tokens += e.input_tokens;
            m.output_tokens += e.output_tokens;
            if let Some(cost) = e.cost {
                let day = self.day_starts.partition_point(|&t| t <= e.time).saturating_sub(1);
                self.daily[day] += cost;
            }
        }
        let Some(session) = &e.session else { return };
        let s = self.sessions.get_mut(session);
        s.in_window = true;
        let mut extra = [None, None];
        if s.agent == NONE {
            s.agent = agent;
        } else if s.agent != agent {
            extra[0] = Some(Tag::Agent(agent));
        }
        if s.variant == NONE {
            s.variant = variant;
        } else if s.variant != variant {
            extra[1] = Some(Tag::Variant(variant));
        }
        if e.kind == EventKind::ModelCall {
            s.cost.add(e.cost);
            s.input_tokens += e.input_tokens;
            s.output_tokens += e.output_tokens;
            s.model_calls += 1;
        }
        for tag in extra.into_iter().flatten() {
            self.extra_tags.insert((session.as_ref().into(), tag));
        }
    }

    fn variant_id(&mut self, experiment: Id, variant: Id) -> Id {
        let next = self.variant_list.len() as Id;
        let id = *self.variant_pairs.entry((experiment, variant)).or_insert(next);
        if id == next {
            self.variant_list.push((experiment, variant));
        }
        id
    }

    /// Folds another worker's tally into this one.
    pub fn merge(&mut self, other: Tally) {
        let Tally {
            names, current, prior, models, agents, variants, variant_list, sessions, extra_tags, daily, ..
        } = other;
        // Their ids mean nothing here: translate through the names.
        let ids: Vec<Id> = names.names.iter().map(|n| self.names.id(n)).collect();
        let name = |id: Id| if id == NONE { NONE } else { ids[id as usize] };
        let variant_ids: Vec<Id> = variant_list.iter().map(|&(e, v)| self.variant_id(name(e), name(v))).collect();
        let variant = |id: Id| if id == NONE { NONE } else { variant_ids[id as usize] };

        self.current.merge(&current);
        self.prior.merge(&prior);
        for ((m, p), acc) in models {
            let mine = self.models.entry((name(m), name(p))).or_default();
            mine.cost.merge(acc.cost);
            mine.input_tokens += acc.input_tokens;
            mine.output_tokens += acc.output_tokens;
        }
        for (a, acc) in agents {
            self.agents.entry(name(a)).or_default().merge(acc);
        }
        for (v, acc) in variants {
            self.variants.entry(variant(v)).or_default().merge(acc);
        }
        for (day, cost) in self.daily.iter_mut().zip(daily) {
            *day += cost;
        }
        self.sessions.reserve(sessions.len());
        for (key, theirs) in sessions.iter() {
            let (agent, var) = (name(theirs.agent), variant(theirs.variant));
            let mine = self.sessions.get_mut(key);
            mine.in_window |= theirs.in_window;
            mine.in_previous |= theirs.in_previous;
            mine.cost.merge(theirs.cost);
            mine.input_tokens += theirs.input_tokens;
            mine.output_tokens += theirs.output_tokens;
            mine.model_calls += theirs.model_calls;
            let mut extra = [None, None];
            match (mine.agent, agent) {
                (_, NONE) => {}
                (NONE, a) => mine.agent = a,
                (m, a) if m != a => extra[0] = Some(Tag::Agent(a)),
                _ => {}
            }
            match (mine.variant, var) {
                (_, NONE) => {}
                (NONE, v) => mine.variant = v,
                (m, v) if m != v => extra[1] = Some(Tag::Variant(v)),
                _ => {}
            }
            for tag in extra.into_iter().flatten() {
                self.extra_tags.insert((key.into(), tag));
            }
        }
        for (key, tag) in extra_tags {
            let tag = match tag {
                Tag::Agent(a) => Tag::Agent(name(a)),
                Tag::Variant(v) => Tag::Variant(variant(v)),
            };
            self.extra_tags.insert((key, tag));
        }
    }

    /// The rows of the window (with the `top` costliest sessions) and the previous
    /// window's totals.
    pub fn finish(self, top: usize) -> (Rows, Option<Totals>) {
        let name = |id: Id| self.names.name(id).unwrap_or("unknown").to_string();
        let opt_name = |id: Id| self.names.name(id).map(str::to_string);

        let mut agent_sessions: HashMap<Id, u64> = HashMap::new();
        let mut variant_sessions: HashMap<Id, u64> = HashMap::new();
        let (mut in_window, mut in_previous) = (0, 0);
        for s in self.sessions.values() {
            in_window += u64::from(s.in_window);
            in_previous += u64::from(s.in_previous);
            if s.in_window {
                *agent_sessions.entry(s.agent).or_default() += 1;
                *variant_sessions.entry(s.variant).or_default() += 1;
            }
        }
        for (key, tag) in &self.extra_tags {
            let primary = self.sessions.get(key).copied().unwrap_or_default();
            match *tag {
                Tag::Agent(a) if a != primary.agent => *agent_sessions.entry(a).or_default() += 1,
                Tag::Variant(v) if v != primary.variant => *variant_sessions.entry(v).or_default() += 1,
                _ => {}
            }
        }

        let by_model = self
            .models
            .iter()
            .map(|(&(m, p), acc)| ModelRow {
                model: name(m),
                provider: name(p),
                cost: acc.cost.value(),
                input_tokens: acc.input_tokens,
                output_tokens: acc.output_tokens,
                calls: Some(acc.cost.costed + acc.cost.uncosted),
            })
            .collect();
        let by_agent = self
            .agents
            .iter()
            .map(|(&a, acc)| AgentRow {
                agent: name(a),
                cost: acc.cost.value(),
                sessions: agent_sessions.get(&a).copied().unwrap_or(0),
                errors: Some(acc.errors),
            })
            .collect();
        let by_variant = self
            .variants
            .iter()
            .map(|(&v, acc)| {
                let (experiment, variant) = self.variant_list[v as usize];
                VariantRow {
                    experiment: opt_name(experiment),
                    variant: opt_name(variant),
                    sessions: variant_sessions.get(&v).copied().unwrap_or(0),
                    cost: acc.cost.value(),
                    errors: acc.errors,
                    spread: VariantSpread::default(),
                }
            })
            .collect();
        let by_session = self.top_sessions(top);
        let daily = self.days.iter().zip(&self.daily).map(|(&date, &cost)| DayRow { date, cost }).collect();
        let rows = Rows {
            totals: self.current.totals(in_window),
            by_model,
            by_agent,
            by_variant,
            by_session,
            daily,
            durations: None,
        };
        let previous = self.previous.map(|_| self.prior.totals(in_previous));
        (rows, previous)
    }

    fn top_sessions(&self, top: usize) -> Vec<SessionRow> {
        let mut sessions: Vec<(&str, &SessionAcc)> = self.sessions.iter().filter(|(_, s)| s.in_window).collect();
        let order = |a: &(&str, &SessionAcc), b: &(&str, &SessionAcc)| {
            crate::digest::by_cost(a.1.cost.value(), b.1.cost.value()).then_with(|| a.0.cmp(b.0))
        };
        if top < sessions.len() {
            if top > 0 {
                sessions.select_nth_unstable_by(top - 1, order);
            }
            sessions.truncate(top);
        }
        sessions.sort_by(order);
        sessions
            .into_iter()
            .map(|(key, s)| SessionRow {
                session: key.to_string(),
                agent: self.session_agent(key, s),
                cost: s.cost.value(),
                input_tokens: s.input_tokens,
                output_tokens: s.output_tokens,
                model_calls: s.model_calls,
            })
            .collect()
    }

    /// A session's agent; for the rare session seen under several, the first by name that
    /// is known, so the answer does not depend on which thread read what.
    fn session_agent(&self, key: &str, s: &SessionAcc) -> String {
        let extra = self.extra_tags.iter().filter_map(|(k, tag)| match tag {
            Tag::Agent(a) if &**k == key => Some(*a),
            _ => None,
        });
        std::iter::once(s.agent)
            .chain(extra)
            .filter_map(|id| self.names.name(id))
            .min_by_key(|n| (*n == "unknown", *n))
            .unwrap_or("unknown")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::source::jsonl::Shape;

    const DAY: Nanos = 86_400 * 1_000_000_000;

    fn event(
        session: &'static str,
        agent: &'static str,
        model: &'static str,
        variant: Option<&'static str>,
        time: Nanos,
        cost: f64,
    ) -> Event<'static> {
        Event {
            shape: Shape::A,
            kind: if cost > 0.0 { EventKind::ModelCall } else { EventKind::RunEnd },
            time,
            session: Some(Cow::Borrowed(session)),
            agent: Cow::Borrowed(agent),
            model: Cow::Borrowed(model),
            provider: Cow::Borrowed("anthropic"),
            experiment: variant.map(|_| Cow::Borrowed("exp")),
            variant: variant.map(Cow::Borrowed),
            cost: Usd::from_f64(cost),
            input_tokens: 10,
            output_tokens: 1,
            failed: cost == 0.0,
        }
    }

    fn tally() -> Tally {
        let days = (0..7).map(|d| NaiveDate::from_ymd_opt(2026, 11, 16 + d).expect("date")).collect();
        Tally::with_days((7 * DAY, 14 * DAY), Some((0, 7 * DAY)), days, (0..7).map(|d| (7 + d) * DAY).collect())
    }

    /// Sorted rows, for comparing tallies whose maps iterate in different orders.
    fn rows(t: Tally) -> String {
        let (mut rows, previous) = t.finish(100);
        rows.by_model.sort_by(|a, b| a.model.cmp(&b.model));
        rows.by_agent.sort_by(|a, b| a.agent.cmp(&b.agent));
        rows.by_variant.sort_by(|a, b| a.variant.cmp(&b.variant));
        rows.by_session.sort_by(|a, b| a.session.cmp(&b.session));
        format!("{rows:?} {previous:?}")
    }

    fn events() -> Vec<Event<'static>> {
        let mut events = Vec::new();
        for (i, session) in ["s1", "s2", "s3", "s4"].into_iter().enumerate() {
            let t = if i == 3 { DAY } else { 8 * DAY + i as Nanos };
            events.push(event(session, "main", "claude", Some("A"), t, 0.25));
            events.push(event(session, "main", "gpt", Some("A"), t + 1, 0.5));
            // A second agent and variant in one session, and a failed run.
            events.push(event(session, if i == 1 { "ops" } else { "main" }, "claude", Some("B"), t + 2, 0.0));
            events.push(event(session, "main", "claude", None, t + 3, 1.0));
        }
        events
    }

    #[test]
    fn remembering_the_last_lookup_changes_nothing() {
        // Sessions one after the other (the cache hits) and interleaved (it misses each
        // time), in one tally and split over two merged ones: the same rows.
        let grouped = events();
        let mut interleaved: Vec<&Event> = Vec::new();
        for i in 0..4 {
            interleaved.extend(grouped.iter().skip(i).step_by(4));
        }
        let mut a = tally();
        grouped.iter().for_each(|e| a.add(e));
        let mut b = tally();
        interleaved.iter().for_each(|e| b.add(e));
        let (mut c, mut d) = (tally(), tally());
        interleaved.iter().enumerate().for_each(|(i, e)| if i % 3 == 0 { c.add(e) } else { d.add(e) });
        c.merge(d);
        let expected = rows(a);
        assert_eq!(rows(b), expected);
        assert_eq!(rows(c), expected);
        assert!(expected.contains("sessions: 3"), "{expected}");
    }
}
