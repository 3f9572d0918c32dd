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
use hashbrown::{DefaultHashBuilder, Equivalent, HashMap, HashTable};

use crate::digest::{AgentRow, DayRow, GroupCosts, ModelRow, Rows, SessionRow, Totals, VariantRow, VariantSpread};
use crate::event::{Event, EventKind};
use crate::source::filter::Filters;
use crate::usd::SquareSum;
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

/// The figures of the group the last lines fell in, not yet added to its map. Consecutive
/// lines nearly always share their agent, variant and model, so a line adds into this and
/// the map is looked up only when the group changes (1.5 % of the instructions of the
/// benchmark's digest were these lookups). [`Tally::settle`] empties every one before the
/// maps are read.
struct Pending<K, V> {
    key: Option<K>,
    acc: V,
}

impl<K, V: Default> Default for Pending<K, V> {
    fn default() -> Self {
        Pending { key: None, acc: V::default() }
    }
}

impl<K: Copy + Eq + std::hash::Hash, V: Default + Fold> Pending<K, V> {
    fn at(&mut self, key: K, map: &mut HashMap<K, V>) -> &mut V {
        if self.key != Some(key) {
            self.settle(map);
            self.key = Some(key);
        }
        &mut self.acc
    }

    fn settle(&mut self, map: &mut HashMap<K, V>) {
        if let Some(key) = self.key.take() {
            map.entry(key).or_default().fold(std::mem::take(&mut self.acc));
        }
    }
}

/// Adding up one group's figures.
trait Fold {
    fn fold(&mut self, other: Self);
}

impl Fold for Usd {
    fn fold(&mut self, other: Usd) {
        *self += other;
    }
}

/// The groups the last lines fell in (see [`Pending`]).
#[derive(Default)]
struct PendingGroups {
    agent: Pending<Id, GroupAcc>,
    variant: Pending<Id, GroupAcc>,
    model: Pending<(Id, Id), ModelAcc>,
    prior_model: Pending<PriorKey, Usd>,
    prior_agent: Pending<PriorKey, Usd>,
    prior_variant: Pending<PriorKey, Usd>,
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

    fn id(&self, key: &str) -> Option<Id> {
        self.find(self.hasher.hash_one(key), key)
    }

    fn get(&self, key: &str) -> Option<&SessionAcc> {
        self.accs.get(self.id(key)? as usize)
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

/// A group of the previous window, by interned names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PriorKey {
    Model(Id, Id),
    Agent(Id),
    Variant(Id, Id),
}

#[derive(Clone, Default)]
struct Counters {
    cost: Cost,
    input_tokens: u64,
    output_tokens: u64,
    model_calls: u64,
    runs: u64,
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
                self.input_tokens = self.input_tokens.saturating_add(e.input_tokens);
                self.output_tokens = self.output_tokens.saturating_add(e.output_tokens);
            }
            EventKind::ToolCall => {
                self.tool_calls += 1;
                self.tool_failures += u64::from(e.failed);
            }
            EventKind::RunEnd => {
                self.runs += 1;
                self.errors += u64::from(e.failed);
            }
            EventKind::Other => {}
        }
    }

    fn merge(&mut self, o: &Counters) {
        self.cost.merge(o.cost);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.model_calls += o.model_calls;
        self.runs += o.runs;
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
            runs: Some(self.runs),
            tool_calls: Some(self.tool_calls),
            tool_failures: Some(self.tool_failures),
            uncosted_events: Some(self.cost.uncosted),
            events: Some(self.events),
            model_errors: None,
            costed_sessions: None,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct ModelAcc {
    cost: Cost,
    input_tokens: u64,
    output_tokens: u64,
}

/// An agent's or a variant's events: cost, runs (`errors` of them failed), tool calls.
#[derive(Clone, Copy, Default)]
struct GroupAcc {
    cost: Cost,
    runs: u64,
    errors: u64,
    tool_calls: u64,
    tool_failures: u64,
}

impl GroupAcc {
    fn add(&mut self, e: &Event) {
        match e.kind {
            EventKind::ModelCall => self.cost.add(e.cost),
            EventKind::RunEnd => {
                self.runs += 1;
                self.errors += u64::from(e.failed);
            }
            EventKind::ToolCall => {
                self.tool_calls += 1;
                self.tool_failures += u64::from(e.failed);
            }
            EventKind::Other => {}
        }
    }

    fn merge(&mut self, o: GroupAcc) {
        self.cost.merge(o.cost);
        self.runs += o.runs;
        self.errors += o.errors;
        self.tool_calls += o.tool_calls;
        self.tool_failures += o.tool_failures;
    }
}

impl Fold for GroupAcc {
    fn fold(&mut self, other: GroupAcc) {
        self.merge(other);
    }
}

impl Fold for ModelAcc {
    fn fold(&mut self, other: ModelAcc) {
        self.cost.merge(other.cost);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
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
    /// Every model call of the session in the window, whatever its variant: the calls of
    /// other variants than `variant` are also in `extra_tags`, so the cost in `variant` is
    /// this minus theirs.
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

/// A key of `Tally::extra_tags` borrowed from a line, so that finding it allocates nothing.
/// Hashes as the owned `(Box<str>, Tag)` does: a tuple hashes its fields in order.
#[derive(Hash)]
struct TagOf<'a>(&'a str, Tag);

impl Equivalent<(Box<str>, Tag)> for TagOf<'_> {
    fn equivalent(&self, key: &(Box<str>, Tag)) -> bool {
        *self.0 == *key.0 && self.1 == key.1
    }
}

/// Adds `cost` to the session's tag, creating it when new.
fn add_tag(tags: &mut HashMap<(Box<str>, Tag), Usd>, session: &str, tag: Tag, cost: Usd) {
    match tags.get_mut(&TagOf(session, tag)) {
        Some(known) => *known += cost,
        None => {
            tags.insert((session.into(), tag), cost);
        }
    }
}

pub struct Tally {
    window: (Nanos, Nanos),
    previous: Option<(Nanos, Nanos)>,
    days: Vec<NaiveDate>,
    day_starts: Vec<Nanos>,
    names: Interner,
    current: Counters,
    prior: Counters,
    /// The previous window's known cost by model, agent and variant (a variant by its
    /// pair of names: pairs of this window are numbered in `variant_pairs`).
    prior_costs: HashMap<PriorKey, Usd>,
    models: HashMap<(Id, Id), ModelAcc>,
    agents: HashMap<Id, GroupAcc>,
    /// Keyed by the id of an (experiment, variant) pair in `variant_pairs`.
    variants: HashMap<Id, GroupAcc>,
    variant_pairs: HashMap<(Id, Id), Id>,
    variant_list: Vec<(Id, Id)>,
    sessions: Sessions,
    recent: RecentIds,
    pending: PendingGroups,
    /// The other agents and variants of sessions seen under several. For a variant, the
    /// known cost of the session's model calls tagged with it (for an agent, zero). An
    /// entry for the session's own `variant` may hold part of that variant's cost (from a
    /// merge): it is already in the session's cost and is not counted again.
    extra_tags: HashMap<(Box<str>, Tag), Usd>,
    daily: Vec<Usd>,
    /// `--agent`, `--model`, `--experiment`: `None` counts every event.
    filters: Option<std::sync::Arc<Filters>>,
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
            prior_costs: HashMap::new(),
            models: HashMap::new(),
            agents: HashMap::new(),
            variants: HashMap::new(),
            variant_pairs: HashMap::new(),
            variant_list: Vec::new(),
            sessions: Sessions::default(),
            recent: RecentIds::default(),
            pending: PendingGroups::default(),
            extra_tags: HashMap::new(),
            filters: None,
        }
    }

    /// Counts only the events the filters keep.
    pub fn with_filters(mut self, filters: &Filters) -> Tally {
        self.filters = (!filters.is_empty()).then(|| std::sync::Arc::new(filters.clone()));
        self
    }

    /// A tally for another thread: same windows, nothing counted.
    pub fn empty_like(&self) -> Tally {
        let mut t = Tally::with_days(self.window, self.previous, self.days.clone(), self.day_starts.clone());
        t.filters = self.filters.clone();
        t
    }

    /// The span of time whose events matter: the window and the previous one.
    pub fn span(&self) -> (Nanos, Nanos) {
        match self.previous {
            Some((start, end)) => (start.min(self.window.0), end.max(self.window.1)),
            None => self.window,
        }
    }

    pub fn add(&mut self, e: &Event) {
        if self.filters.as_ref().is_some_and(|f| !f.keeps(e)) {
            return;
        }
        if self.window.0 <= e.time && e.time < self.window.1 {
            self.add_current(e);
        } else if matches!(self.previous, Some((s, end)) if s <= e.time && e.time < end) {
            self.prior.add(e);
            if let (EventKind::ModelCall, Some(cost)) = (e.kind, e.cost) {
                let (names, recent) = (&mut self.names, &mut self.recent);
                let model =
                    (names.recent_id(&mut recent.model, &e.model), names.recent_id(&mut recent.provider, &e.provider));
                let agent = names.recent_id(&mut recent.agent, &e.agent);
                let experiment = names.recent_opt_id(&mut recent.experiment, e.experiment.as_deref());
                let variant = names.recent_opt_id(&mut recent.variant, e.variant.as_deref());
                let (pending, costs) = (&mut self.pending, &mut self.prior_costs);
                *pending.prior_model.at(PriorKey::Model(model.0, model.1), costs) += cost;
                *pending.prior_agent.at(PriorKey::Agent(agent), costs) += cost;
                *pending.prior_variant.at(PriorKey::Variant(experiment, variant), costs) += cost;
            }
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
        self.pending.agent.at(agent, &mut self.agents).add(e);
        self.pending.variant.at(variant, &mut self.variants).add(e);
        if e.kind == EventKind::ModelCall {
            let key = (
                self.names.recent_id(&mut self.recent.model, &e.model),
                self.names.recent_id(&mut self.recent.provider, &e.provider),
            );
            let m = self.pending.model.at(key, &mut self.models);
            m.cost.add(e.cost);
            m.input_tokens = m.input_tokens.saturating_add(e.input_tokens);
            m.output_tokens = m.output_tokens.saturating_add(e.output_tokens);
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
        let mut cost = Usd::ZERO;
        if e.kind == EventKind::ModelCall {
            s.cost.add(e.cost);
            s.input_tokens = s.input_tokens.saturating_add(e.input_tokens);
            s.output_tokens = s.output_tokens.saturating_add(e.output_tokens);
            s.model_calls += 1;
            cost = e.cost.unwrap_or(Usd::ZERO);
        }
        if let Some(tag) = extra[0] {
            add_tag(&mut self.extra_tags, session, tag, Usd::ZERO);
        }
        if let Some(tag) = extra[1] {
            add_tag(&mut self.extra_tags, session, tag, cost);
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

    /// Adds the pending groups' figures to their maps, which are then complete.
    fn settle(&mut self) {
        let p = &mut self.pending;
        p.agent.settle(&mut self.agents);
        p.variant.settle(&mut self.variants);
        p.model.settle(&mut self.models);
        for prior in [&mut p.prior_model, &mut p.prior_agent, &mut p.prior_variant] {
            prior.settle(&mut self.prior_costs);
        }
    }

    /// Folds another worker's tally into this one.
    pub fn merge(&mut self, mut other: Tally) {
        self.settle();
        other.settle();
        let Tally {
            names,
            current,
            prior,
            prior_costs,
            models,
            agents,
            variants,
            variant_list,
            sessions,
            extra_tags,
            daily,
            ..
        } = other;
        // Their ids mean nothing here: translate through the names.
        let ids: Vec<Id> = names.names.iter().map(|n| self.names.id(n)).collect();
        let name = |id: Id| if id == NONE { NONE } else { ids[id as usize] };
        let variant_ids: Vec<Id> = variant_list.iter().map(|&(e, v)| self.variant_id(name(e), name(v))).collect();
        let variant = |id: Id| if id == NONE { NONE } else { variant_ids[id as usize] };

        self.current.merge(&current);
        self.prior.merge(&prior);
        for (key, cost) in prior_costs {
            let key = match key {
                PriorKey::Model(m, p) => PriorKey::Model(name(m), name(p)),
                PriorKey::Agent(a) => PriorKey::Agent(name(a)),
                PriorKey::Variant(e, v) => PriorKey::Variant(name(e), name(v)),
            };
            *self.prior_costs.entry(key).or_default() += cost;
        }
        for ((m, p), acc) in models {
            self.models.entry((name(m), name(p))).or_default().fold(acc);
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
        // Their sessions' cost in other variants than their own, to tell their cost in
        // their own variant apart.
        let mut their_others: HashMap<&str, Usd> = HashMap::new();
        for ((key, tag), &cost) in &extra_tags {
            if let Tag::Variant(v) = *tag {
                if sessions.get(key).is_some_and(|s| s.variant != v) {
                    *their_others.entry(&**key).or_default() += cost;
                }
            }
        }
        self.sessions.reserve(sessions.len());
        for (key, theirs) in sessions.iter() {
            let (agent, var) = (name(theirs.agent), variant(theirs.variant));
            let mine = self.sessions.get_mut(key);
            mine.in_window |= theirs.in_window;
            mine.in_previous |= theirs.in_previous;
            mine.cost.merge(theirs.cost);
            mine.input_tokens = mine.input_tokens.saturating_add(theirs.input_tokens);
            mine.output_tokens = mine.output_tokens.saturating_add(theirs.output_tokens);
            mine.model_calls += theirs.model_calls;
            match (mine.agent, agent) {
                (_, NONE) => {}
                (NONE, a) => mine.agent = a,
                (m, a) if m != a => add_tag(&mut self.extra_tags, key, Tag::Agent(a), Usd::ZERO),
                _ => {}
            }
            match (mine.variant, var) {
                (_, NONE) => {}
                (NONE, v) => mine.variant = v,
                (m, v) if m != v => {
                    // Their own variant is another one here: its cost goes aside.
                    let others = their_others.get(key).copied().unwrap_or(Usd::ZERO);
                    add_tag(&mut self.extra_tags, key, Tag::Variant(v), theirs.cost.known - others);
                }
                _ => {}
            }
        }
        drop(their_others);
        for ((key, tag), cost) in extra_tags {
            let tag = match tag {
                Tag::Agent(a) => Tag::Agent(name(a)),
                Tag::Variant(v) => Tag::Variant(variant(v)),
            };
            *self.extra_tags.entry((key, tag)).or_default() += cost;
        }
    }

    /// The rows of the window (with the `top` costliest sessions), the previous window's
    /// totals and its cost by group.
    pub fn finish(mut self, top: usize) -> (Rows, Option<Totals>, Option<GroupCosts>) {
        self.settle();
        let name = |id: Id| self.names.name(id).unwrap_or("unknown").to_string();
        let opt_name = |id: Id| self.names.name(id).map(str::to_string);

        let mut agent_sessions: HashMap<Id, u64> = HashMap::new();
        let mut variant_sessions: HashMap<Id, u64> = HashMap::new();
        // Σ over sessions of (the session's cost in the variant)², by variant id.
        let mut squares = vec![SquareSum::default(); self.variant_list.len()];
        // The cost of a session in its other variants, by session number.
        let mut others: HashMap<Id, Usd> = HashMap::new();
        for ((key, tag), &cost) in &self.extra_tags {
            let Some(id) = self.sessions.id(key) else { continue };
            let primary = &self.sessions.accs[id as usize];
            match *tag {
                Tag::Agent(a) if a != primary.agent => *agent_sessions.entry(a).or_default() += 1,
                Tag::Variant(v) if v != primary.variant => {
                    *variant_sessions.entry(v).or_default() += 1;
                    squares[v as usize].add(cost);
                    *others.entry(id).or_default() += cost;
                }
                _ => {}
            }
        }
        let (mut in_window, mut in_previous) = (0, 0);
        for (id, s) in self.sessions.values().enumerate() {
            in_window += u64::from(s.in_window);
            in_previous += u64::from(s.in_previous);
            if s.in_window {
                *agent_sessions.entry(s.agent).or_default() += 1;
                *variant_sessions.entry(s.variant).or_default() += 1;
                let aside = if others.is_empty() { None } else { others.get(&(id as Id)).copied() };
                if let Some(sum) = squares.get_mut(s.variant as usize) {
                    sum.add(s.cost.known - aside.unwrap_or(Usd::ZERO));
                }
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
                    spread: VariantSpread {
                        // A cost figure: unknown with the variant's cost.
                        cost_sum_squares: acc.cost.value().map(|_| squares[v as usize].usd2()),
                        runs: Some(acc.runs),
                        tool_calls: Some(acc.tool_calls),
                        tool_failures: Some(acc.tool_failures),
                    },
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
        let mut costs = GroupCosts::default();
        for (key, &cost) in &self.prior_costs {
            match *key {
                PriorKey::Model(m, p) => {
                    costs.by_model.insert((name(m), name(p)), cost);
                }
                PriorKey::Agent(a) => {
                    costs.by_agent.insert(name(a), cost);
                }
                PriorKey::Variant(e, v) => {
                    costs.by_variant.insert((opt_name(e), opt_name(v)), cost);
                }
            }
        }
        (rows, previous, self.previous.map(|_| costs))
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
        let extra = self.extra_tags.keys().filter_map(|(k, tag)| match tag {
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
        let (mut rows, previous, previous_costs) = t.finish(100);
        rows.by_model.sort_by(|a, b| a.model.cmp(&b.model));
        rows.by_agent.sort_by(|a, b| a.agent.cmp(&b.agent));
        rows.by_variant.sort_by(|a, b| a.variant.cmp(&b.variant));
        rows.by_session.sort_by(|a, b| a.session.cmp(&b.session));
        format!("{rows:?} {previous:?} {previous_costs:?}")
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
        // Three runs ended in the window, all failed, one of them in variant B.
        assert!(expected.contains("errors: Some(3), runs: Some(3)"), "{expected}");
        assert!(expected.contains("errors: 3, spread: VariantSpread { cost_sum_squares: Some("), "{expected}");
    }

    #[test]
    fn the_groups_of_the_last_lines_are_counted() {
        // The last lines' agent, variant and model are added to their rows only when the
        // rows are read (`Pending`): every cost must be in them, in both windows, whether
        // the tally is finished directly or merged first.
        let usd = |x: f64| Usd::from_f64(x).expect("usd");
        for merged in [false, true] {
            let mut t = tally();
            events().iter().for_each(|e| t.add(e));
            if merged {
                let mut other = tally();
                other.add(&event("s9", "ops", "gpt", Some("A"), 9 * DAY, 2.0));
                other.add(&event("s9", "ops", "gpt", Some("A"), 2 * DAY, 4.0));
                t.merge(other);
            }
            let extra = if merged { 2.0 } else { 0.0 };
            let (rows, _, prior) = t.finish(100);
            let prior = prior.expect("a previous window");
            let sum = |costs: Vec<Option<Usd>>| costs.into_iter().map(|c| c.expect("a cost")).sum::<Usd>();
            // Three sessions of 1.75 in the window, one in the previous window.
            assert_eq!(sum(rows.by_agent.iter().map(|r| r.cost).collect()), usd(5.25 + extra));
            assert_eq!(sum(rows.by_model.iter().map(|r| r.cost).collect()), usd(5.25 + extra));
            assert_eq!(sum(rows.by_variant.iter().map(|r| r.cost).collect()), usd(5.25 + extra));
            assert_eq!(prior.by_agent.values().copied().sum::<Usd>(), usd(1.75 + 2.0 * extra));
            assert_eq!(prior.by_model.values().copied().sum::<Usd>(), usd(1.75 + 2.0 * extra));
            assert_eq!(prior.by_variant.values().copied().sum::<Usd>(), usd(1.75 + 2.0 * extra));
            assert_eq!(prior.by_model.get(&("gpt".into(), "anthropic".into())).copied(), Some(usd(0.5 + 2.0 * extra)));
        }
    }

    /// A model call (`cost` in USD, `None` uncosted), a run end or a tool call, in the
    /// window, of experiment `exp` and variant `variant`.
    fn tagged(
        kind: EventKind,
        session: Option<&'static str>,
        variant: &'static str,
        cost: Option<f64>,
    ) -> Event<'static> {
        Event {
            kind,
            session: session.map(Cow::Borrowed),
            experiment: Some(Cow::Borrowed("exp")),
            variant: Some(Cow::Borrowed(variant)),
            cost: cost.and_then(Usd::from_f64),
            failed: false,
            ..event("x", "main", "claude", None, 8 * DAY, 0.0)
        }
    }

    #[test]
    fn variant_spread_is_exact_and_independent_of_the_split() {
        use EventKind::{ModelCall as Call, RunEnd as Run, ToolCall as Tool};
        let failed = |e: Event<'static>| Event { failed: true, ..e };
        let events = [
            // s1: 1.5 in A, 2.0 in B.
            tagged(Call, Some("s1"), "A", Some(1.0)),
            tagged(Call, Some("s1"), "B", Some(2.0)),
            failed(tagged(Run, Some("s1"), "A", None)),
            failed(tagged(Tool, Some("s1"), "B", None)),
            tagged(Tool, Some("s1"), "A", None),
            tagged(Call, Some("s1"), "A", Some(0.5)),
            // s2: 3.0 in A.
            tagged(Call, Some("s2"), "A", Some(3.0)),
            tagged(Run, Some("s2"), "A", None),
            // s3: unknown cost in B, so 0.
            tagged(Call, Some("s3"), "B", None),
            // s4: first seen in B, without a cost there; 0.25 in A.
            tagged(Tool, Some("s4"), "B", None),
            tagged(Call, Some("s4"), "A", Some(0.25)),
            // No session: in A's cost, not in its spread.
            tagged(Call, None, "A", Some(10.0)),
        ];
        let spread = |t: Tally| {
            let (rows, _, _) = t.finish(10);
            let mut v: Vec<(String, u64, f64, VariantSpread)> = rows
                .by_variant
                .into_iter()
                .map(|r| (r.variant.unwrap(), r.sessions, r.cost.unwrap().as_f64(), r.spread))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            (v, rows.totals.runs, rows.totals.errors)
        };
        let mut one = tally();
        events.iter().for_each(|e| one.add(e));
        let expected = spread(one);
        let (variants, runs, errors) = &expected;
        assert_eq!((*runs, *errors), (Some(2), Some(1)));
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b;
        let (a, b) = (&variants[0], &variants[1]);
        assert_eq!((a.0.as_str(), a.1, a.2), ("A", 3, 14.75));
        assert!(close(a.3.cost_sum_squares.unwrap(), 1.5 * 1.5 + 3.0 * 3.0 + 0.25 * 0.25), "{a:?}");
        assert_eq!((a.3.runs, a.3.tool_calls, a.3.tool_failures), (Some(2), Some(1), Some(0)));
        assert_eq!((b.0.as_str(), b.1, b.2), ("B", 3, 2.0));
        assert!(close(b.3.cost_sum_squares.unwrap(), 4.0), "{b:?}");
        assert_eq!((b.3.runs, b.3.tool_calls, b.3.tool_failures), (Some(0), Some(2), Some(1)));

        // Split over two tallies in several patterns, merged either way round: a session's
        // first variant differs between them, and its cost in each variant is on both sides.
        let splits: [fn(usize) -> bool; 5] =
            [|i| i % 2 == 0, |i| i % 3 == 0, |i| i < 6, |i| i >= 6, |i| matches!(i, 1 | 3 | 9)];
        for (n, goes_left) in splits.iter().enumerate() {
            for reversed in [false, true] {
                let (mut left, mut right) = (tally(), tally());
                for (i, e) in events.iter().enumerate() {
                    if goes_left(i) {
                        left.add(e)
                    } else {
                        right.add(e)
                    }
                }
                if reversed {
                    std::mem::swap(&mut left, &mut right);
                }
                left.merge(right);
                assert_eq!(spread(left), expected, "split {n}, reversed {reversed}");
            }
        }
    }
}
