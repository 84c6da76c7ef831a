//! Channels as state the server owns, independent of any wire format: who
//! is in which channel, with which role, under which topic and modes, and
//! whether a join, a kick, a topic or a mode change is allowed. The IRC
//! front door (`../shared/IRC.md`) maps its commands onto these operations
//! and their errors onto numerics ([`ChannelError::numeric`]).
//!
//! Invariants:
//! - A channel exists while it has members; its first member becomes its
//!   operator, except in the lobby, which has no operators and whose topic
//!   and modes nobody changes (and nobody is kicked from it).
//! - Channel names compare ASCII case-insensitively; a member is in a
//!   channel at most once; `members` keeps join order (the order a roster
//!   is listed in).
//! - Every operation either applies completely or returns an error and
//!   changes nothing.

use std::collections::HashMap;

/// Most bytes of a channel name, its `#` included.
pub const MAX_CHANNEL_NAME: usize = 50;
/// Most entries in each of a channel's ban, exception and invite lists.
pub const MAX_LIST: usize = 100;
/// Most bytes of a mask in those lists.
pub const MAX_MASK: usize = 100;
/// Most bytes of a topic; a longer one is cut at a character boundary
/// (ISUPPORT `TOPICLEN`: a 332 reply with the longest nick and channel name
/// still fits in 512 bytes).
pub const MAX_TOPIC: usize = 300;
/// Most bytes of a `+k` key (ISUPPORT `KEYLEN`).
pub const MAX_KEY: usize = 23;
/// Most channels one member is in at once (ISUPPORT `CHANLIMIT`), the lobby
/// included.
pub const MAX_CHANNELS_PER_MEMBER: usize = 20;

/// A valid channel name: `#` and 1 to 49 bytes without space, comma, BEL
/// or other control characters. Equality and hashing ignore ASCII case.
#[derive(Debug, Clone)]
pub struct ChannelName(String);

/// Why a channel name is not valid (IRC: 403 ERR_NOSUCHCHANNEL or 476).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    /// It does not start with `#`.
    #[error("a channel name starts with #")]
    NoPrefix,
    /// Nothing after the `#`, or more than 49 bytes.
    #[error("a channel name has 1 to 49 bytes after the #")]
    Length,
    /// A space, comma, BEL or other control character.
    #[error("a channel name has no spaces, commas or control characters")]
    Character,
}

impl ChannelName {
    /// `#lobby`, the lobby's default name.
    pub(crate) fn default_lobby() -> Self {
        Self("#lobby".into())
    }

    /// Checks `name`.
    pub fn new(name: &str) -> Result<Self, ChannelNameError> {
        let rest = name.strip_prefix('#').ok_or(ChannelNameError::NoPrefix)?;
        if rest.is_empty() || name.len() > MAX_CHANNEL_NAME {
            return Err(ChannelNameError::Length);
        }
        if name.chars().any(|c| c == ' ' || c == ',' || c.is_control()) {
            return Err(ChannelNameError::Character);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as first given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in one case: equal names have equal keys.
    pub(crate) fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl PartialEq for ChannelName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for ChannelName {}

impl std::fmt::Display for ChannelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The on/off modes of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `+t`: only operators set the topic.
    TopicLock,
    /// `+n`: only members send to it.
    NoExternal,
    /// `+m`: only operators and voiced members send to it.
    Moderated,
    /// `+i`: joining needs an invitation (or an invite exception).
    InviteOnly,
    /// `+s`: left out of LIST and WHOIS for non-members.
    Secret,
}

impl Flag {
    /// Every flag with its mode letter.
    pub const ALL: [(Flag, char); 5] = [
        (Flag::TopicLock, 't'),
        (Flag::NoExternal, 'n'),
        (Flag::Moderated, 'm'),
        (Flag::InviteOnly, 'i'),
        (Flag::Secret, 's'),
    ];
}

/// The lists of masks a channel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// `+b`: who may not join (or speak).
    Ban,
    /// `+e`: exceptions to the bans.
    Except,
    /// `+I`: who may join an invite-only channel uninvited.
    Invite,
}

impl List {
    /// Its mode letter.
    pub fn letter(self) -> char {
        match self {
            Self::Ban => 'b',
            Self::Except => 'e',
            Self::Invite => 'I',
        }
    }
}

/// One change of a channel's modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeChange<Id> {
    /// `+o`/`-o` for a member.
    Op(Id, bool),
    /// `+v`/`-v` for a member.
    Voice(Id, bool),
    /// A flag on or off.
    Flag(Flag, bool),
    /// `+k key` / `-k`.
    Key(Option<String>),
    /// `+l n` / `-l`.
    Limit(Option<usize>),
    /// A mask added to (`true`) or removed from a list.
    Mask(List, String, bool),
}

/// Why a channel operation was refused, with the IRC numeric that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel does not exist (403).
    #[error("no such channel")]
    NoSuchChannel,
    /// The actor is not in the channel (442).
    #[error("you are not on that channel")]
    NotOnChannel,
    /// The target is not in the channel (441).
    #[error("they are not on that channel")]
    TargetNotOnChannel,
    /// The actor is already in the channel (443 for INVITE).
    #[error("already on channel")]
    AlreadyOnChannel,
    /// The actor needs to be an operator, or it is the lobby (482).
    #[error("you are not channel operator")]
    NotOperator,
    /// The channel is at its `+l` limit (471).
    #[error("cannot join channel (+l)")]
    Full,
    /// `+i` and no invitation (473).
    #[error("cannot join channel (+i)")]
    InviteOnly,
    /// A ban matches and no exception does (474).
    #[error("cannot join channel (+b)")]
    Banned,
    /// `+k` and the wrong key (475).
    #[error("cannot join channel (+k)")]
    BadKey,
    /// A ban, exception or invite list is full (478).
    #[error("channel list is full")]
    ListFull,
    /// The joiner is in [`MAX_CHANNELS_PER_MEMBER`] channels already (405).
    #[error("you have joined too many channels")]
    TooManyChannels,
    /// A key or mask that cannot be used: empty, too long, or with spaces,
    /// commas or control characters (696 ERR_INVALIDMODEPARAM).
    #[error("invalid mode parameter")]
    InvalidModeParam,
}

impl ChannelError {
    /// The IRC numeric for this refusal.
    pub fn numeric(self) -> u16 {
        match self {
            Self::NoSuchChannel => 403,
            Self::NotOnChannel => 442,
            Self::TargetNotOnChannel => 441,
            Self::AlreadyOnChannel => 443,
            Self::NotOperator => 482,
            Self::Full => 471,
            Self::InviteOnly => 473,
            Self::Banned => 474,
            Self::BadKey => 475,
            Self::ListFull => 478,
            Self::TooManyChannels => 405,
            Self::InvalidModeParam => 696,
        }
    }
}

/// One member and its roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<Id> {
    /// The member's connection.
    pub id: Id,
    /// `@`: may change the topic, modes, kick and invite.
    pub op: bool,
    /// `+`: may speak in a moderated channel.
    pub voice: bool,
}

/// A topic and who set it (the caller's timestamp, e.g. Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The text (empty: no topic).
    pub text: String,
    /// Who set it, as the IRC front door names them (`nick!user@host`).
    pub set_by: String,
    /// When, in the caller's units.
    pub set_at: u64,
}

/// One channel's state.
#[derive(Debug, Clone)]
pub struct Channel<Id> {
    name: ChannelName,
    lobby: bool,
    members: Vec<Member<Id>>,
    topic: Option<Topic>,
    flags: Vec<Flag>,
    key: Option<String>,
    limit: Option<usize>,
    lists: HashMap<List, Vec<String>>,
    invited: Vec<Id>,
    /// When it was created, in the caller's units, if it said.
    created_at: Option<u64>,
}

impl<Id: Copy + PartialEq> Channel<Id> {
    fn new(name: ChannelName, lobby: bool) -> Self {
        Self {
            name,
            lobby,
            members: Vec::new(),
            topic: None,
            flags: Vec::new(),
            key: None,
            limit: None,
            lists: HashMap::new(),
            invited: Vec::new(),
            created_at: None,
        }
    }

    /// When it was created (IRC 329 RPL_CREATIONTIME), if the caller said
    /// ([`Channels::set_created_at`]).
    pub fn created_at(&self) -> Option<u64> {
        self.created_at
    }

    /// The name as first given.
    pub fn name(&self) -> &ChannelName {
        &self.name
    }

    /// Whether this is the lobby (native users' channel).
    pub fn is_lobby(&self) -> bool {
        self.lobby
    }

    /// Members in join order.
    pub fn members(&self) -> &[Member<Id>] {
        &self.members
    }

    /// `id`'s membership, if it is a member.
    pub fn member(&self, id: Id) -> Option<&Member<Id>> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The topic, if one is set.
    pub fn topic(&self) -> Option<&Topic> {
        self.topic.as_ref()
    }

    /// Whether `flag` is on.
    pub fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    /// The `+k` key.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The `+l` limit.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The masks of `list`.
    pub fn list(&self, list: List) -> &[String] {
        self.lists.get(&list).map_or(&[], Vec::as_slice)
    }

    /// The modes as IRC shows them (`+nt`, `+k`'s key and `+l`'s limit
    /// shown to members only): the letters, then their arguments.
    pub fn mode_string(&self, member: bool) -> (String, Vec<String>) {
        let mut letters = String::from("+");
        let mut args = Vec::new();
        for (flag, letter) in Flag::ALL {
            if self.has(flag) {
                letters.push(letter);
            }
        }
        if let Some(key) = &self.key {
            letters.push('k');
            if member {
                args.push(key.clone());
            }
        }
        if let Some(limit) = self.limit {
            letters.push('l');
            if member {
                args.push(limit.to_string());
            }
        }
        (letters, args)
    }

    /// Whether `id` may send to the channel (`+n`, `+m`, bans), given the
    /// mask it is known by.
    pub fn may_speak(&self, id: Id, mask: &str) -> bool {
        match self.member(id) {
            None => !self.has(Flag::NoExternal) && !self.banned(mask),
            Some(m) if m.op || m.voice => true,
            Some(_) => !self.has(Flag::Moderated) && !self.banned(mask),
        }
    }

    fn banned(&self, mask: &str) -> bool {
        let matches = |list| self.list(list).iter().any(|m| mask_matches(m, mask));
        matches(List::Ban) && !matches(List::Except)
    }

    fn operator(&self, id: Id) -> Result<(), ChannelError> {
        match self.member(id) {
            None => Err(ChannelError::NotOnChannel),
            Some(m) if m.op && !self.lobby => Ok(()),
            Some(_) => Err(ChannelError::NotOperator),
        }
    }

    fn member_mut(&mut self, id: Id) -> Option<&mut Member<Id>> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Applies one mode change; `Ok(false)` when it changed nothing.
    fn apply(&mut self, change: &ModeChange<Id>) -> Result<bool, ChannelError> {
        if change.invalid_parameter().is_some() {
            return Err(ChannelError::InvalidModeParam);
        }
        let changed = match change {
            ModeChange::Op(id, on) | ModeChange::Voice(id, on) => {
                let op = matches!(change, ModeChange::Op(..));
                let member = self
                    .member_mut(*id)
                    .ok_or(ChannelError::TargetNotOnChannel)?;
                let role = if op {
                    &mut member.op
                } else {
                    &mut member.voice
                };
                std::mem::replace(role, *on) != *on
            }
            ModeChange::Flag(flag, on) => {
                let had = self.has(*flag);
                self.flags.retain(|f| f != flag);
                if *on {
                    self.flags.push(*flag);
                }
                had != *on
            }
            ModeChange::Key(key) => std::mem::replace(&mut self.key, key.clone()) != *key,
            ModeChange::Limit(limit) => std::mem::replace(&mut self.limit, *limit) != *limit,
            ModeChange::Mask(list, mask, add) => {
                let entries = self.lists.entry(*list).or_default();
                let present = entries.iter().position(|m| m.eq_ignore_ascii_case(mask));
                match (present, add) {
                    (None, true) if entries.len() >= MAX_LIST => {
                        return Err(ChannelError::ListFull);
                    }
                    (None, true) => {
                        entries.push(mask.clone());
                        true
                    }
                    (Some(at), false) => {
                        entries.remove(at);
                        true
                    }
                    _ => false,
                }
            }
        };
        Ok(changed)
    }
}

/// What one MODE request did, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeOutcome<Id> {
    /// The changes that changed something (to announce).
    pub applied: Vec<ModeChange<Id>>,
    /// The changes refused, each with why (`InvalidModeParam`,
    /// `TargetNotOnChannel` or `ListFull`).
    pub refused: Vec<(ModeChange<Id>, ChannelError)>,
}

/// Every channel, and the lobby.
#[derive(Debug)]
pub struct Channels<Id> {
    by_name: HashMap<String, Channel<Id>>,
    lobby: ChannelName,
    /// Members that left the lobby so far (see `lobby_departures`).
    lobby_departures: u64,
}

/// What a successful join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The channel did not exist: the joiner created it (and is its operator,
    /// unless it is the lobby).
    pub created: bool,
}

impl<Id: Copy + PartialEq> Channels<Id> {
    /// No channels yet; `lobby` is the one native users live in.
    pub fn new(lobby: ChannelName) -> Self {
        Self {
            by_name: HashMap::new(),
            lobby,
            lobby_departures: 0,
        }
    }

    /// How many times a member left the lobby. While it stays the same, the
    /// lobby's members are the ones of any earlier look, in the same order,
    /// followed by those who joined since: a roster encoded then can be
    /// extended instead of rebuilt.
    pub fn lobby_departures(&self) -> u64 {
        self.lobby_departures
    }

    /// The lobby's name.
    pub fn lobby(&self) -> &ChannelName {
        &self.lobby
    }

    /// Records when `name` was created (in the caller's units), unless it
    /// already knows.
    pub fn set_created_at(&mut self, name: &ChannelName, at: u64) {
        if let Some(channel) = self.by_name.get_mut(&name.key()) {
            channel.created_at.get_or_insert(at);
        }
    }

    /// The channel called `name` (any case), if it exists.
    pub fn get(&self, name: &ChannelName) -> Option<&Channel<Id>> {
        self.by_name.get(&name.key())
    }

    /// Every channel, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Channel<Id>> {
        self.by_name.values()
    }

    /// The channels `id` is in.
    pub fn of(&self, id: Id) -> impl Iterator<Item = &Channel<Id>> {
        self.by_name
            .values()
            .filter(move |c| c.member(id).is_some())
    }

    /// `id` (known by `mask`, `nick!user@host`) joins `name` with `key`.
    /// Native users join the lobby at registration through this too; no
    /// check applies there (the lobby has no modes).
    pub fn join(
        &mut self,
        id: Id,
        name: &ChannelName,
        key: Option<&str>,
        mask: &str,
    ) -> Result<Joined, ChannelError> {
        let lobby = *name == self.lobby;
        let already = self.of(id).count();
        let channel = self
            .by_name
            .entry(name.key())
            // The lobby keeps its configured spelling, whoever creates it.
            .or_insert_with(|| {
                Channel::new(
                    if lobby {
                        self.lobby.clone()
                    } else {
                        name.clone()
                    },
                    lobby,
                )
            });
        let created = channel.members.is_empty();
        if channel.member(id).is_some() {
            return Err(ChannelError::AlreadyOnChannel);
        }
        if already >= MAX_CHANNELS_PER_MEMBER {
            if created {
                self.by_name.remove(&name.key());
            }
            return Err(ChannelError::TooManyChannels);
        }
        if !created {
            let invited = channel.invited.contains(&id);
            let invite_excepted = || {
                channel
                    .list(List::Invite)
                    .iter()
                    .any(|m| mask_matches(m, mask))
            };
            if channel
                .limit
                .is_some_and(|limit| channel.members.len() >= limit)
            {
                return Err(ChannelError::Full);
            }
            if channel.has(Flag::InviteOnly) && !invited && !invite_excepted() {
                return Err(ChannelError::InviteOnly);
            }
            // An invitation opens `+i`, not a ban: otherwise any member
            // could let a banned user back in.
            if channel.banned(mask) {
                return Err(ChannelError::Banned);
            }
            if channel.key.as_deref().is_some_and(|k| key != Some(k)) {
                return Err(ChannelError::BadKey);
            }
        }
        channel.invited.retain(|&i| i != id);
        channel.members.push(Member {
            id,
            op: created && !lobby,
            voice: false,
        });
        Ok(Joined { created })
    }

    /// `id`, a native user, joins the lobby: no check applies (the lobby has
    /// no modes, and a native user is in no other channel), so it costs O(1)
    /// however many are in. The caller guarantees `id` is in no channel.
    pub fn join_lobby(&mut self, id: Id) {
        let lobby = self.lobby.clone();
        let channel = self
            .by_name
            .entry(lobby.key())
            .or_insert_with(|| Channel::new(lobby, true));
        debug_assert!(channel.member(id).is_none(), "joined the lobby twice");
        channel.members.push(Member {
            id,
            op: false,
            voice: false,
        });
    }

    /// `id`, a native user, leaves the lobby, the only channel it is in:
    /// [`remove`](Self::remove) without looking at every channel.
    pub fn leave_lobby(&mut self, id: Id) {
        let key = self.lobby.key();
        if let Some(channel) = self.by_name.get_mut(&key) {
            self.lobby_departures += 1;
            channel.members.retain(|m| m.id != id);
            channel.invited.retain(|&i| i != id);
            if channel.members.is_empty() {
                self.by_name.remove(&key);
            }
        }
    }

    /// `id` leaves `name`; the channel ends with its last member.
    pub fn part(&mut self, id: Id, name: &ChannelName) -> Result<(), ChannelError> {
        let key = name.key();
        let channel = self
            .by_name
            .get_mut(&key)
            .ok_or(ChannelError::NoSuchChannel)?;
        let before = channel.members.len();
        channel.members.retain(|m| m.id != id);
        if channel.members.len() == before {
            return Err(ChannelError::NotOnChannel);
        }
        if channel.lobby {
            self.lobby_departures += 1;
        }
        if channel.members.is_empty() {
            self.by_name.remove(&key);
        }
        Ok(())
    }

    /// `id` is gone (QUIT, a lost connection): it leaves every channel and
    /// every invitation. Returns the channels it was in.
    pub fn remove(&mut self, id: Id) -> Vec<ChannelName> {
        let mut left = Vec::new();
        let departures = &mut self.lobby_departures;
        self.by_name.retain(|_, channel| {
            channel.invited.retain(|&i| i != id);
            let before = channel.members.len();
            channel.members.retain(|m| m.id != id);
            if channel.members.len() < before {
                left.push(channel.name.clone());
                *departures += u64::from(channel.lobby);
            }
            !channel.members.is_empty()
        });
        left
    }

    /// `actor` kicks `target` out of `name` (never out of the lobby).
    pub fn kick(&mut self, actor: Id, target: Id, name: &ChannelName) -> Result<(), ChannelError> {
        let channel = self
            .by_name
            .get(&name.key())
            .ok_or(ChannelError::NoSuchChannel)?;
        if channel.lobby {
            // Nobody kicks anyone out of the lobby, member or not (482).
            return Err(ChannelError::NotOperator);
        }
        channel.operator(actor)?;
        if channel.member(target).is_none() {
            return Err(ChannelError::TargetNotOnChannel);
        }
        self.part(target, name)
    }

    /// `actor` invites `target` into `name` (an operator, where `+i`).
    pub fn invite(
        &mut self,
        actor: Id,
        target: Id,
        name: &ChannelName,
    ) -> Result<(), ChannelError> {
        let channel = self
            .by_name
            .get_mut(&name.key())
            .ok_or(ChannelError::NoSuchChannel)?;
        if channel.member(actor).is_none() {
            return Err(ChannelError::NotOnChannel);
        }
        if channel.member(target).is_some() {
            return Err(ChannelError::AlreadyOnChannel);
        }
        if channel.has(Flag::InviteOnly) {
            channel.operator(actor)?;
        }
        if !channel.invited.contains(&target) {
            // Bounded like the lists: the oldest invitation goes first.
            if channel.invited.len() >= MAX_LIST {
                channel.invited.remove(0);
            }
            channel.invited.push(target);
        }
        Ok(())
    }

    /// `actor` sets the topic of `name` (`+t`: operators only; never in the
    /// lobby). An empty text clears it.
    pub fn set_topic(
        &mut self,
        actor: Id,
        name: &ChannelName,
        topic: Topic,
    ) -> Result<(), ChannelError> {
        let channel = self
            .by_name
            .get_mut(&name.key())
            .ok_or(ChannelError::NoSuchChannel)?;
        if channel.member(actor).is_none() {
            return Err(ChannelError::NotOnChannel);
        }
        if channel.lobby || channel.has(Flag::TopicLock) {
            channel.operator(actor)?;
        }
        let mut topic = topic;
        let mut end = topic.text.len().min(MAX_TOPIC);
        while !topic.text.is_char_boundary(end) {
            end -= 1;
        }
        topic.text.truncate(end);
        channel.topic = (!topic.text.is_empty()).then_some(topic);
        Ok(())
    }

    /// `actor` applies `changes` to `name`'s modes, each on its own (as
    /// Modern IRC has it: a refused change does not undo the others). The
    /// whole request is refused only when the channel does not exist or the
    /// actor is not its operator.
    pub fn change_modes(
        &mut self,
        actor: Id,
        name: &ChannelName,
        changes: Vec<ModeChange<Id>>,
    ) -> Result<ModeOutcome<Id>, ChannelError> {
        let channel = self
            .by_name
            .get_mut(&name.key())
            .ok_or(ChannelError::NoSuchChannel)?;
        channel.operator(actor)?;
        let mut outcome = ModeOutcome {
            applied: Vec::new(),
            refused: Vec::new(),
        };
        for change in changes {
            match channel.apply(&change) {
                Ok(true) => outcome.applied.push(change),
                Ok(false) => {}
                Err(error) => outcome.refused.push((change, error)),
            }
        }
        Ok(outcome)
    }
}

/// A key or mask: 1 to `max` bytes, no spaces, commas or control characters.
impl<Id> ModeChange<Id> {
    /// The mode letter and the parameter to show in 696
    /// ERR_INVALIDMODEPARAM when this change's parameter is not valid (the
    /// one [`Channels::change_modes`] refuses): a key is shown as `*`, never
    /// echoed.
    pub fn invalid_parameter(&self) -> Option<(char, &str)> {
        match self {
            Self::Key(Some(key)) if !valid_parameter(key, MAX_KEY) => Some(('k', "*")),
            Self::Mask(list, mask, true) if !valid_parameter(mask, MAX_MASK) => {
                Some((list.letter(), mask))
            }
            _ => None,
        }
    }
}

fn valid_parameter(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && !value
            .chars()
            .any(|c| c == ' ' || c == ',' || c.is_control())
}

/// Whether `mask` (`*` any run, `?` any one byte; ASCII case ignored)
/// matches `subject` (`nick!user@host`).
pub fn mask_matches(mask: &str, subject: &str) -> bool {
    let (mask, subject) = (mask.as_bytes(), subject.as_bytes());
    // Iterative glob with one backtrack point: linear in practice, never
    // exponential whatever the mask.
    let (mut m, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        match mask.get(m) {
            Some(b'*') => {
                star = Some((m, s));
                m += 1;
            }
            Some(&c) if c == b'?' || subject.get(s).is_some_and(|b| b.eq_ignore_ascii_case(&c)) => {
                m += 1;
                s += 1;
            }
            _ => match star {
                Some((star_m, star_s)) => {
                    m = star_m + 1;
                    s = star_s + 1;
                    star = Some((star_m, star_s + 1));
                }
                None => return false,
            },
        }
    }
    mask.get(m..).unwrap_or_default().iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    fn channels() -> Channels<u32> {
        Channels::new(ch("#lobby"))
    }

    #[test]
    fn names_follow_the_contract() {
        assert!(ChannelName::new("#a").is_ok());
        assert!(ChannelName::new(&format!("#{}", "x".repeat(49))).is_ok());
        assert_eq!(
            ChannelName::new(&format!("#{}", "x".repeat(50))).unwrap_err(),
            ChannelNameError::Length
        );
        assert_eq!(ChannelName::new("#").unwrap_err(), ChannelNameError::Length);
        assert_eq!(
            ChannelName::new("a").unwrap_err(),
            ChannelNameError::NoPrefix
        );
        for bad in ["#a b", "#a,b", "#a\x07", "#a\x01"] {
            assert_eq!(
                ChannelName::new(bad).unwrap_err(),
                ChannelNameError::Character,
                "{bad:?}"
            );
        }
        assert_eq!(ch("#Rust"), ch("#rUST"));
    }

    #[test]
    fn the_first_member_is_operator_and_the_channel_ends_with_the_last() {
        let mut c = channels();
        assert_eq!(
            c.join(1, &ch("#Rust"), None, "a!a@h"),
            Ok(Joined { created: true })
        );
        assert_eq!(
            c.join(2, &ch("#rust"), None, "b!b@h"),
            Ok(Joined { created: false })
        );
        assert_eq!(
            c.join(2, &ch("#rust"), None, "b!b@h"),
            Err(ChannelError::AlreadyOnChannel)
        );
        let rust = c.get(&ch("#RUST")).unwrap();
        assert_eq!(rust.name().as_str(), "#Rust");
        let roles: Vec<(u32, bool)> = rust.members().iter().map(|m| (m.id, m.op)).collect();
        assert_eq!(roles, [(1, true), (2, false)]);
        assert_eq!(c.part(1, &ch("#rust")), Ok(()));
        assert_eq!(c.part(1, &ch("#rust")), Err(ChannelError::NotOnChannel));
        assert_eq!(c.remove(2), [ch("#rust")]);
        assert!(c.get(&ch("#rust")).is_none(), "gone with its last member");
        assert_eq!(c.part(2, &ch("#rust")), Err(ChannelError::NoSuchChannel));
    }

    #[test]
    fn the_lobby_has_no_operator_topic_setter_modes_or_kicks() {
        let mut c = channels();
        c.join(1, &ch("#LOBBY"), None, "a!a@h").unwrap();
        c.join(2, &ch("#lobby"), None, "b!b@h").unwrap();
        assert!(c.get(&ch("#lobby")).unwrap().is_lobby());
        assert!(
            c.get(&ch("#lobby"))
                .unwrap()
                .members()
                .iter()
                .all(|m| !m.op)
        );
        let topic = Topic {
            text: "hi".into(),
            set_by: "a".into(),
            set_at: 0,
        };
        assert_eq!(
            c.set_topic(1, &ch("#lobby"), topic),
            Err(ChannelError::NotOperator)
        );
        assert_eq!(c.kick(1, 2, &ch("#lobby")), Err(ChannelError::NotOperator));
        assert_eq!(
            c.kick(9, 2, &ch("#lobby")),
            Err(ChannelError::NotOperator),
            "482, not 442"
        );
        let change = vec![ModeChange::Flag(Flag::Moderated, true)];
        assert_eq!(
            c.change_modes(1, &ch("#lobby"), change),
            Err(ChannelError::NotOperator)
        );
        assert_eq!(ChannelError::NotOperator.numeric(), 482);
    }

    #[test]
    fn joins_are_checked_against_limit_invite_bans_and_key() {
        let mut c = channels();
        let x = ch("#x");
        c.join(1, &x, None, "op!o@h").unwrap();
        let set = |c: &mut Channels<u32>, change| c.change_modes(1, &x, vec![change]).map(|_| ());
        set(&mut c, ModeChange::Key(Some("sesame".into()))).unwrap();
        assert_eq!(c.join(2, &x, None, "b!b@h"), Err(ChannelError::BadKey));
        assert_eq!(
            c.join(2, &x, Some("wrong"), "b!b@h"),
            Err(ChannelError::BadKey)
        );
        c.join(2, &x, Some("sesame"), "b!b@h").unwrap();
        set(&mut c, ModeChange::Limit(Some(2))).unwrap();
        assert_eq!(
            c.join(3, &x, Some("sesame"), "c!c@h"),
            Err(ChannelError::Full)
        );
        set(&mut c, ModeChange::Limit(None)).unwrap();
        set(&mut c, ModeChange::Mask(List::Ban, "c!*@*".into(), true)).unwrap();
        assert_eq!(
            c.join(3, &x, Some("sesame"), "c!c@h"),
            Err(ChannelError::Banned)
        );
        set(&mut c, ModeChange::Mask(List::Except, "*!c@h".into(), true)).unwrap();
        c.join(3, &x, Some("sesame"), "C!c@H").unwrap();
        set(&mut c, ModeChange::Flag(Flag::InviteOnly, true)).unwrap();
        assert_eq!(
            c.join(4, &x, Some("sesame"), "d!d@h"),
            Err(ChannelError::InviteOnly)
        );
        assert_eq!(
            c.invite(2, 4, &x),
            Err(ChannelError::NotOperator),
            "+i: operators invite"
        );
        c.invite(1, 4, &x).unwrap();
        // An invitation does not lift a ban.
        c.invite(1, 6, &x).unwrap();
        set(&mut c, ModeChange::Mask(List::Ban, "f!*@*".into(), true)).unwrap();
        assert_eq!(
            c.join(6, &x, Some("sesame"), "f!f@h"),
            Err(ChannelError::Banned)
        );
        c.join(4, &x, Some("sesame"), "d!d@h").unwrap();
        set(&mut c, ModeChange::Mask(List::Invite, "e!*@*".into(), true)).unwrap();
        c.join(5, &x, Some("sesame"), "e!e@h").unwrap();
    }

    #[test]
    fn mode_changes_apply_each_on_its_own_and_report_what_changed() {
        let mut c = channels();
        let x = ch("#x");
        c.join(1, &x, None, "a").unwrap();
        c.join(2, &x, None, "b").unwrap();
        assert_eq!(
            c.change_modes(2, &x, vec![ModeChange::Flag(Flag::TopicLock, true)]),
            Err(ChannelError::NotOperator)
        );
        // A change refused (a target not in the channel, a bad key) does not
        // undo the others: each stands on its own, as in Modern IRC.
        let changes = vec![
            ModeChange::Flag(Flag::TopicLock, true),
            ModeChange::Op(9, true),
            ModeChange::Key(Some("a,b".into())),
            ModeChange::Voice(2, true),
        ];
        let outcome = c.change_modes(1, &x, changes).unwrap();
        assert_eq!(
            outcome.applied,
            [
                ModeChange::Flag(Flag::TopicLock, true),
                ModeChange::Voice(2, true)
            ]
        );
        assert_eq!(
            outcome.refused,
            [
                (ModeChange::Op(9, true), ChannelError::TargetNotOnChannel),
                (
                    ModeChange::Key(Some("a,b".into())),
                    ChannelError::InvalidModeParam
                ),
            ]
        );
        assert!(c.get(&x).unwrap().has(Flag::TopicLock));
        let changes = vec![
            ModeChange::Flag(Flag::TopicLock, true),
            ModeChange::Flag(Flag::Moderated, true),
            ModeChange::Op(2, true),
            ModeChange::Op(1, true),
        ];
        let outcome = c.change_modes(1, &x, changes).unwrap();
        assert_eq!(
            outcome.applied,
            [
                ModeChange::Flag(Flag::Moderated, true),
                ModeChange::Op(2, true)
            ],
            "only what changed something"
        );
        let (letters, args) = c.get(&x).unwrap().mode_string(true);
        assert_eq!((letters.as_str(), args.len()), ("+tm", 0));
        for i in 0..MAX_LIST {
            let mask = format!("m{i}!*@*");
            c.change_modes(1, &x, vec![ModeChange::Mask(List::Ban, mask, true)])
                .unwrap();
        }
        let changes = vec![
            ModeChange::Mask(List::Ban, "z!*@*".into(), true),
            ModeChange::Mask(List::Ban, "m0!*@*".into(), false),
            ModeChange::Flag(Flag::Moderated, false),
        ];
        let outcome = c.change_modes(1, &x, changes).unwrap();
        assert_eq!(
            outcome.refused,
            [(
                ModeChange::Mask(List::Ban, "z!*@*".into(), true),
                ChannelError::ListFull
            )]
        );
        assert_eq!(outcome.applied.len(), 2, "the removal and -m still apply");
        assert_eq!(c.get(&x).unwrap().list(List::Ban).len(), MAX_LIST - 1);
    }

    #[test]
    fn topic_lock_moderation_and_external_messages() {
        let mut c = channels();
        let x = ch("#x");
        c.join(1, &x, None, "a!a@h").unwrap();
        c.join(2, &x, None, "b!b@h").unwrap();
        let topic = |text: &str| Topic {
            text: text.into(),
            set_by: "b".into(),
            set_at: 7,
        };
        c.set_topic(2, &x, topic("anyone may")).unwrap();
        assert_eq!(c.get(&x).unwrap().topic().unwrap().text, "anyone may");
        c.change_modes(1, &x, vec![ModeChange::Flag(Flag::TopicLock, true)])
            .unwrap();
        assert_eq!(
            c.set_topic(2, &x, topic("no")),
            Err(ChannelError::NotOperator)
        );
        c.set_topic(1, &x, topic("")).unwrap();
        assert!(
            c.get(&x).unwrap().topic().is_none(),
            "an empty topic clears it"
        );
        let channel = c.get(&x).unwrap();
        assert!(
            channel.may_speak(3, "c!c@h"),
            "outsiders may speak without +n"
        );
        c.change_modes(
            1,
            &x,
            vec![
                ModeChange::Flag(Flag::NoExternal, true),
                ModeChange::Flag(Flag::Moderated, true),
            ],
        )
        .unwrap();
        let channel = c.get(&x).unwrap();
        assert!(!channel.may_speak(3, "c!c@h") && !channel.may_speak(2, "b!b@h"));
        assert!(channel.may_speak(1, "a!a@h"), "operators speak in +m");
    }

    #[test]
    fn limits_on_channels_per_member_topics_keys_and_masks() {
        let mut c = channels();
        for i in 0..MAX_CHANNELS_PER_MEMBER {
            c.join(1, &ch(&format!("#c{i}")), None, "a").unwrap();
        }
        assert_eq!(
            c.join(1, &ch("#one-more"), None, "a"),
            Err(ChannelError::TooManyChannels)
        );
        assert!(c.get(&ch("#one-more")).is_none(), "not left behind empty");
        let x = ch("#c0");
        let long = Topic {
            text: "é".repeat(MAX_TOPIC),
            set_by: "a".into(),
            set_at: 0,
        };
        c.set_topic(1, &x, long).unwrap();
        let kept = &c.get(&x).unwrap().topic().unwrap().text;
        assert!(kept.len() <= MAX_TOPIC && kept.chars().all(|ch| ch == 'é'));
        let refused = |c: &mut Channels<u32>, change: ModeChange<u32>| {
            let outcome = c.change_modes(1, &x, vec![change]).unwrap();
            assert!(outcome.applied.is_empty());
            outcome
                .refused
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
        };
        for bad in ["", "a b", "a,b", &"k".repeat(MAX_KEY + 1)] {
            let change = ModeChange::Key(Some(bad.into()));
            assert_eq!(
                refused(&mut c, change),
                [ChannelError::InvalidModeParam],
                "{bad:?}"
            );
        }
        let change = ModeChange::Mask(List::Ban, "m".repeat(MAX_MASK + 1), true);
        assert_eq!(refused(&mut c, change), [ChannelError::InvalidModeParam]);
        assert!(ChannelName::new("#a\u{85}").is_err(), "C1 controls too");
    }

    #[test]
    fn masks_glob_without_blowing_up() {
        assert!(mask_matches("*!*@*", "a!b@c"));
        assert!(mask_matches("A?C!*", "abc!x@y"));
        assert!(!mask_matches("a*c", "abd"));
        assert!(mask_matches("*", ""));
        assert!(!mask_matches("?", ""));
        let hostile = format!("{}b", "*a".repeat(40));
        assert!(!mask_matches(&hostile, &"a".repeat(500)));
    }

    proptest::proptest! {
        /// Random joins, parts, kicks, departures and op changes keep the
        /// invariants: no empty channel, nobody twice in one, the lobby
        /// without operators, and `of` agreeing with `members`.
        #[test]
        fn random_operations_keep_the_invariants(
            ops in proptest::collection::vec((0u8..5, 0u32..6, 0u32..6, 0usize..4), 0..200),
        ) {
            let names = [ch("#lobby"), ch("#a"), ch("#B"), ch("#c")];
            let mut c = channels();
            for (op, actor, target, channel) in ops {
                let name = &names[channel];
                let _ = match op {
                    0 => c.join(actor, name, None, "m!m@h").map(|_| ()),
                    1 => c.part(actor, name),
                    2 => c.kick(actor, target, name),
                    3 => c.change_modes(actor, name, vec![ModeChange::Op(target, true)]).map(|_| ()),
                    _ => {
                        c.remove(actor);
                        Ok(())
                    }
                };
                for channel in c.iter() {
                    proptest::prop_assert!(!channel.members().is_empty());
                    for (i, m) in channel.members().iter().enumerate() {
                        proptest::prop_assert!(channel.members()[i + 1..].iter().all(|o| o.id != m.id));
                        proptest::prop_assert!(!(channel.is_lobby() && m.op));
                    }
                }
                for id in 0..6 {
                    let via_of = c.of(id).count();
                    let via_members = c.iter().filter(|ch| ch.member(id).is_some()).count();
                    proptest::prop_assert_eq!(via_of, via_members);
                }
            }
        }
    }
}
