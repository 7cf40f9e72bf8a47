//! The [`Registry`] trait — the boundary between SecureEHR and whatever chain runs the
//! contract — and [`RegistryExt`], the contract's operations built on it.
//!
//! A backend only sends signed calls, makes read-only calls and answers log queries; every
//! rule lives in the contract, so one conformance suite covers every backend.

use alloy::primitives::{Address, B256, Bytes, Log, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use async_trait::async_trait;

use crate::contract::EhrRegistry as C;
use crate::error::{Error, Result};
pub use crate::tx::{SentTx, TxStatus};
pub use crate::values::*;

/// A mined transaction, as far as SecureEHR cares.
#[derive(Clone, Debug)]
pub struct TxReceipt {
    /// The transaction hash.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: u64,
    /// Gas used by the whole transaction (21,000 base included).
    pub gas_used: u64,
    /// Logs it emitted.
    pub logs: Vec<Log>,
}

/// A log with where it was mined.
#[derive(Clone, Debug)]
pub struct ChainLog {
    /// The log (address, topics, data).
    pub log: Log,
    /// The block it was mined in.
    pub block_number: u64,
    /// The transaction that emitted it.
    pub tx_hash: B256,
}

/// Which logs of the contract to fetch: one event, optional indexed topics, a block range.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// The event signature hash (topic 0).
    pub event: B256,
    /// Topics 1–3; `None` matches anything.
    pub topics: [Option<B256>; 3],
    /// First block (inclusive).
    pub from_block: u64,
    /// Last block (inclusive); `None` is the head.
    pub to_block: Option<u64>,
}

impl LogQuery {
    /// All logs of event `E`.
    pub fn event<E: SolEvent>() -> Self {
        Self {
            event: E::SIGNATURE_HASH,
            ..Default::default()
        }
    }

    /// Requires indexed topic `i` (1–3) to equal `value`.
    pub fn topic(mut self, i: usize, value: B256) -> Self {
        self.topics[i - 1] = Some(value);
        self
    }

    /// Whether `log` matches (the contract address is the backend's business).
    pub fn matches(&self, log: &Log, block: u64) -> bool {
        let topics = log.topics();
        topics.first() == Some(&self.event)
            && block >= self.from_block
            && self.to_block.is_none_or(|to| block <= to)
            && self
                .topics
                .iter()
                .enumerate()
                .all(|(i, want)| want.is_none_or(|w| topics.get(i + 1) == Some(&w)))
    }
}

/// Hears of a signed transaction before the chain does (see [`Registry::transact_noted`]);
/// an error stops the send.
pub type TxNote<'a> = dyn Fn(&SentTx) -> Result<()> + Send + Sync + 'a;

/// What a backend says about itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChainInfo {
    /// `embedded` or `json-rpc`.
    pub backend: String,
    /// The EIP-155 chain id.
    pub chain_id: u64,
    /// The newest block number.
    pub head_block: u64,
    /// The newest block hash.
    pub head_hash: B256,
    /// The newest block's timestamp (unix seconds).
    pub head_timestamp: u64,
    /// The registry contract's address.
    pub contract: Address,
}

/// A deployed EhrRegistry on some chain.
///
/// Implementations: [`EmbeddedChain`](crate::EmbeddedChain) and
/// [`RpcRegistry`](crate::RpcRegistry). Contract semantics live in [`RegistryExt`].
#[async_trait]
pub trait Registry: Send + Sync {
    /// The contract's address.
    fn contract(&self) -> Address;

    /// Signs a call of the contract with `from`'s key, sends it and waits until it is mined.
    /// A call the contract refuses is an [`Error::Contract`] and costs nothing.
    async fn transact(&self, from: &PrivateKeySigner, input: Bytes) -> Result<TxReceipt> {
        self.transact_noted(from, input, &|_| Ok(())).await
    }

    /// [`transact`](Self::transact), calling `note` with the signed transaction before it is
    /// handed to the chain (so a caller can remember its hash durably); an error from `note`
    /// stops the send. A transaction that is not mined in time is [`Error::NotMined`]: it
    /// may still be, ask [`tx_status`](Self::tx_status).
    async fn transact_noted(
        &self,
        from: &PrivateKeySigner,
        input: Bytes,
        note: &TxNote<'_>,
    ) -> Result<TxReceipt>;

    /// Whether a transaction sent earlier was mined, may still be, or never will be.
    async fn tx_status(&self, tx: &SentTx) -> Result<TxStatus>;

    /// The first block whose timestamp is at or after `timestamp` (the head + 1 if none):
    /// where a query for "the last few minutes" starts. `None` where log queries need no
    /// bounds (the embedded chain indexes its logs by topic).
    async fn first_block_since(&self, _timestamp: u64) -> Result<Option<u64>> {
        Ok(None)
    }

    /// A read-only call of the contract at the current chain time.
    async fn call(&self, from: Address, input: Bytes) -> Result<Bytes>;

    /// The contract's logs that match `query`, oldest first.
    async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>>;

    /// Backend, chain id, head and contract address.
    async fn info(&self) -> Result<ChainInfo>;

    /// Makes sure `to` can pay for its next transaction where the network charges gas,
    /// within the backend's funding policy (see [`FundingPolicy`](crate::FundingPolicy)). A
    /// no-op on gas-free backends (the embedded chain) and where no policy is set.
    async fn fund_account(&self, _from: &PrivateKeySigner, _to: Address) -> Result<()> {
        Ok(())
    }

    /// Whether the funding budget can still pay a new account's gas:
    /// [`Error::FundingBudgetSpent`] if not. `Ok` where nobody needs funding.
    async fn funding_available(&self) -> Result<()> {
        Ok(())
    }
}

pub(crate) fn u256_topic(v: u64) -> B256 {
    B256::from(U256::from(v))
}

pub(crate) fn addr_topic(a: Address) -> B256 {
    a.into_word()
}

pub(crate) fn to_u64(v: U256, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Abi(format!("{what} {v} does not fit in 64 bits")))
}

/// The first log of event `E` emitted by the contract in `receipt`.
pub(crate) fn event_in<E: SolEvent>(receipt: &TxReceipt, contract: Address) -> Result<E> {
    receipt
        .logs
        .iter()
        .find(|l| l.address == contract && l.topics().first() == Some(&E::SIGNATURE_HASH))
        .ok_or_else(|| Error::Abi(format!("receipt has no {} event", E::SIGNATURE)))
        .and_then(|l| E::decode_log_data(&l.data).map_err(|e| Error::Abi(e.to_string())))
}

pub(crate) async fn send<R: Registry + ?Sized, T: SolCall>(
    r: &R,
    from: &PrivateKeySigner,
    call: T,
) -> Result<TxReceipt> {
    r.transact(from, call.abi_encode().into()).await
}

pub(crate) async fn view<R: Registry + ?Sized, T: SolCall>(r: &R, call: T) -> Result<T::Return> {
    let out = r.call(Address::ZERO, call.abi_encode().into()).await?;
    T::abi_decode_returns(&out).map_err(|e| Error::Abi(e.to_string()))
}

pub(crate) async fn decoded_logs<R: Registry + ?Sized, E: SolEvent>(
    r: &R,
    query: &LogQuery,
) -> Result<Vec<(E, ChainLog)>> {
    r.logs(query)
        .await?
        .into_iter()
        .map(|l| {
            E::decode_log_data(&l.log.data)
                .map(|e| (e, l))
                .map_err(|e| Error::Abi(e.to_string()))
        })
        .collect()
}

/// The contract's operations, for every [`Registry`].
///
/// Transactions return the [`TxReceipt`] (gas, hash, block) with what the contract
/// returned; refusals come back as [`Error::Contract`] with the contract's reason.
#[async_trait]
pub trait RegistryExt: Registry {
    /// The admin (organisation 0) or an organisation's registrar registers a provider in
    /// its own organisation; `profile` is the sha2-256 digest of its directory entry (zero:
    /// none).
    async fn register_provider(
        &self,
        registrar: &PrivateKeySigner,
        provider: Address,
        profile: B256,
    ) -> Result<TxReceipt> {
        send(
            self,
            registrar,
            C::registerProviderCall { provider, profile },
        )
        .await
    }

    /// A registered provider replaces its own directory entry: `profile` is the new entry's
    /// digest (a `ProviderRegistered` event, so [`providers`](Self::providers) and
    /// [`provider_registrations`](Self::provider_registrations) see it as the latest).
    async fn update_profile(
        &self,
        provider: &PrivateKeySigner,
        profile: B256,
    ) -> Result<TxReceipt> {
        send(self, provider, C::updateProfileCall { profile }).await
    }

    /// Deregisters a provider: a registrar its own organisation's only, the admin any.
    async fn deregister_provider(
        &self,
        registrar: &PrivateKeySigner,
        provider: Address,
    ) -> Result<TxReceipt> {
        send(self, registrar, C::deregisterProviderCall { provider }).await
    }

    /// The admin adds an organisation whose providers `registrar` registers; returns its id.
    async fn add_organisation(
        &self,
        admin: &PrivateKeySigner,
        registrar: Address,
        name: &str,
    ) -> Result<(u32, TxReceipt)> {
        let call = C::addOrganisationCall {
            registrar,
            name: name.to_owned(),
        };
        let receipt = send(self, admin, call).await?;
        let ev: C::OrganisationAdded = event_in(&receipt, self.contract())?;
        Ok((ev.organisation, receipt))
    }

    /// The admin gives organisation `id` a new registrar.
    async fn set_registrar(
        &self,
        admin: &PrivateKeySigner,
        id: u32,
        registrar: Address,
    ) -> Result<TxReceipt> {
        send(self, admin, C::setRegistrarCall { id, registrar }).await
    }

    /// The admin removes organisation `id` (it must have no providers left).
    async fn remove_organisation(&self, admin: &PrivateKeySigner, id: u32) -> Result<TxReceipt> {
        send(self, admin, C::removeOrganisationCall { id }).await
    }

    /// Every organisation ever added, oldest first, with its current state (removed ones
    /// have `active: false`).
    async fn organisations(&self) -> Result<Vec<Organisation>> {
        let q = LogQuery::event::<C::OrganisationAdded>();
        let mut out = Vec::new();
        for (e, _) in decoded_logs::<_, C::OrganisationAdded>(self, &q).await? {
            let now = view(self, C::getOrganisationCall { id: e.organisation }).await?;
            out.push(Organisation {
                id: e.organisation,
                name: e.name,
                registrar: now.registrar,
                providers: now.providerCount,
                active: now.active,
            });
        }
        Ok(out)
    }

    /// The current organisation `who` is the registrar of, if any.
    async fn registrar_organisation(&self, who: Address) -> Result<Option<u32>> {
        let id = view(self, C::registrarOrganisationCall(who)).await?;
        Ok((id != 0).then_some(id))
    }

    /// Whether `who` is a registered provider now, and its organisation (that of its last
    /// registration; 0: the admin's).
    async fn provider_of(&self, who: Address) -> Result<(bool, u32)> {
        let r = view(self, C::providerOfCall { account: who }).await?;
        Ok((r.active, r.organisation))
    }

    /// Every registration of provider `who`, oldest first.
    async fn provider_registrations(&self, who: Address) -> Result<Vec<ProviderRegistration>> {
        let q = LogQuery::event::<C::ProviderRegistered>().topic(1, addr_topic(who));
        Ok(decoded_logs::<_, C::ProviderRegistered>(self, &q)
            .await?
            .into_iter()
            .map(|(e, l)| ProviderRegistration {
                provider: e.provider,
                organisation: e.organisation,
                profile: e.profile,
                block_number: l.block_number,
            })
            .collect())
    }

    /// The registered providers now: each one's latest registration, in order of it.
    async fn providers(&self) -> Result<Vec<ProviderRegistration>> {
        let q = LogQuery::event::<C::ProviderRegistered>();
        let mut latest: Vec<ProviderRegistration> = Vec::new();
        for (e, l) in decoded_logs::<_, C::ProviderRegistered>(self, &q).await? {
            latest.retain(|p| p.provider != e.provider);
            latest.push(ProviderRegistration {
                provider: e.provider,
                organisation: e.organisation,
                profile: e.profile,
                block_number: l.block_number,
            });
        }
        let mut out = Vec::with_capacity(latest.len());
        for p in latest {
            if self.provider_of(p.provider).await?.0 {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The admin replaces the node set.
    async fn set_node_set(&self, admin: &PrivateKeySigner, set: &NodeSet) -> Result<TxReceipt> {
        let call = C::setNodeSetCall {
            addrs: set.nodes.iter().map(|(a, _)| *a).collect(),
            keys: set.nodes.iter().map(|(_, k)| *k).collect(),
            k: set.k,
        };
        send(self, admin, call).await
    }

    /// The caller registers as a patient; returns its sequential patient id.
    async fn register_patient(&self, patient: &PrivateKeySigner) -> Result<(u64, TxReceipt)> {
        let receipt = send(self, patient, C::registerPatientCall {}).await?;
        let ev: C::PatientRegistered = event_in(&receipt, self.contract())?;
        Ok((to_u64(ev.patientId, "patient id")?, receipt))
    }

    /// The owner adds a record pointing at a manifest; returns the record id.
    async fn add_record(
        &self,
        owner: &PrivateKeySigner,
        digest: B256,
        codec: u64,
    ) -> Result<(u64, TxReceipt)> {
        self.add_record_noted(owner, digest, codec, &|_| Ok(()))
            .await
    }

    /// [`add_record`](Self::add_record), telling `note` the signed transaction before it is
    /// sent (see [`Registry::transact_noted`]).
    async fn add_record_noted(
        &self,
        owner: &PrivateKeySigner,
        digest: B256,
        codec: u64,
        note: &TxNote<'_>,
    ) -> Result<(u64, TxReceipt)> {
        let call = C::addRecordCall { digest, codec };
        let receipt = self
            .transact_noted(owner, call.abi_encode().into(), note)
            .await?;
        let ev: C::RecordVersion = event_in(&receipt, self.contract())?;
        Ok((to_u64(ev.recordId, "record id")?, receipt))
    }

    /// The owner points a record at a new manifest; returns the new version.
    async fn update_record(
        &self,
        owner: &PrivateKeySigner,
        record_id: u64,
        digest: B256,
        codec: u64,
    ) -> Result<(u32, TxReceipt)> {
        self.update_record_noted(owner, record_id, digest, codec, &|_| Ok(()))
            .await
    }

    /// [`update_record`](Self::update_record), telling `note` the signed transaction before
    /// it is sent (see [`Registry::transact_noted`]).
    async fn update_record_noted(
        &self,
        owner: &PrivateKeySigner,
        record_id: u64,
        digest: B256,
        codec: u64,
        note: &TxNote<'_>,
    ) -> Result<(u32, TxReceipt)> {
        let call = C::updateRecordCall {
            recordId: U256::from(record_id),
            digest,
            codec,
        };
        let receipt = self
            .transact_noted(owner, call.abi_encode().into(), note)
            .await?;
        let ev: C::RecordVersion = event_in(&receipt, self.contract())?;
        Ok((ev.version, receipt))
    }

    /// A patient lets `provider` read one record (`Some(id)`) or all (`None`) until
    /// `expires_at` (unix seconds).
    async fn grant_access(
        &self,
        patient: &PrivateKeySigner,
        provider: Address,
        record: Option<u64>,
        expires_at: u64,
    ) -> Result<TxReceipt> {
        let call = C::grantAccessCall {
            provider,
            recordId: U256::from(record.unwrap_or(0)),
            expiresAt: expires_at,
        };
        send(self, patient, call).await
    }

    /// A patient revokes a grant; it takes effect at the next call.
    async fn revoke_access(
        &self,
        patient: &PrivateKeySigner,
        provider: Address,
        record: Option<u64>,
    ) -> Result<TxReceipt> {
        let call = C::revokeAccessCall {
            provider,
            recordId: U256::from(record.unwrap_or(0)),
        };
        send(self, patient, call).await
    }

    /// A patient ends everything `provider` holds on its records: the all-records grant,
    /// every record grant and every break-glass window, in one transaction.
    async fn revoke_all(&self, patient: &PrivateKeySigner, provider: Address) -> Result<TxReceipt> {
        send(self, patient, C::revokeAllCall { provider }).await
    }

    /// Logs a read by `reader` under `nonce`; refused unless the reader may read.
    async fn log_access(
        &self,
        reader: &PrivateKeySigner,
        record_id: u64,
        nonce: U256,
    ) -> Result<TxReceipt> {
        let call = C::logAccessCall {
            recordId: U256::from(record_id),
            nonce,
        };
        send(self, reader, call).await
    }

    /// Break-glass: a provider opens a record without a grant, giving a reason digest.
    async fn emergency_access(
        &self,
        provider: &PrivateKeySigner,
        record_id: u64,
        reason_digest: B256,
        nonce: U256,
    ) -> Result<TxReceipt> {
        let call = C::emergencyAccessCall {
            recordId: U256::from(record_id),
            reasonDigest: reason_digest,
            nonce,
        };
        send(self, provider, call).await
    }

    /// Whether `reader` may read `record_id` now.
    async fn can_access(&self, reader: Address, record_id: u64) -> Result<bool> {
        view(
            self,
            C::canAccessCall {
                reader,
                recordId: U256::from(record_id),
            },
        )
        .await
    }

    /// The access decision and the time it refers to.
    async fn access_status(&self, reader: Address, record_id: u64) -> Result<(AccessStatus, u64)> {
        let r = view(
            self,
            C::accessStatusCall {
                reader,
                recordId: U256::from(record_id),
            },
        )
        .await?;
        Ok((AccessStatus::from_code(r.status)?, r.when))
    }

    /// A record's owner: the `getRecord` view alone, no event search (so it never races a
    /// version being mined); [`Error::Contract`] `UnknownRecord` if there is none.
    async fn record_owner(&self, record_id: u64) -> Result<Address> {
        Ok(view(
            self,
            C::getRecordCall {
                recordId: U256::from(record_id),
            },
        )
        .await?
        .owner)
    }

    /// A record with its current manifest digest.
    async fn record(&self, record_id: u64) -> Result<RecordInfo> {
        let (r, current) = self.current_version_of(record_id).await?;
        Ok(RecordInfo {
            id: record_id,
            owner: r.owner,
            version: r.version,
            updated_at: r.updatedAt,
            digest: current.digest,
            codec: current.codec,
        })
    }

    /// A record's current version; [`Error::Contract`] `UnknownRecord` if there is none.
    async fn current_version(&self, record_id: u64) -> Result<RecordVersion> {
        Ok(self.current_version_of(record_id).await?.1)
    }

    #[doc(hidden)]
    async fn current_version_of(
        &self,
        record_id: u64,
    ) -> Result<(C::getRecordReturn, RecordVersion)> {
        let r = view(
            self,
            C::getRecordCall {
                recordId: U256::from(record_id),
            },
        )
        .await?;
        // The current version's event was mined in a block stamped `updatedAt`: search only
        // those blocks.
        let from = self.first_block_since(r.updatedAt).await?;
        let to = match from {
            Some(from) => Some(
                self.first_block_since(r.updatedAt.saturating_add(1))
                    .await?
                    .unwrap_or(u64::MAX)
                    .saturating_sub(1)
                    .max(from),
            ),
            None => None,
        };
        // The view can see a block's state a moment before its events and timestamp are
        // searchable (a block being mined): then search up to the head, a few times.
        for attempt in 0..=20 {
            let to = if attempt == 0 { to } else { None };
            let versions = self
                .record_versions_in(record_id, from.unwrap_or(0), to)
                .await?;
            if let Some(current) = versions.into_iter().find(|v| v.version == r.version) {
                return Ok((r, current));
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        }
        Err(Error::Abi(format!(
            "no RecordVersion event for record {record_id} v{}",
            r.version
        )))
    }

    /// Every version of a record, oldest first.
    async fn record_versions(&self, record_id: u64) -> Result<Vec<RecordVersion>> {
        self.record_versions_in(record_id, 0, None).await
    }

    /// The versions of a record mined in blocks `from..=to` (`None`: the head).
    async fn record_versions_in(
        &self,
        record_id: u64,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<RecordVersion>> {
        let mut q = LogQuery::event::<C::RecordVersion>().topic(1, u256_topic(record_id));
        q.from_block = from;
        q.to_block = to;
        decoded_logs::<_, C::RecordVersion>(self, &q)
            .await?
            .into_iter()
            .map(|(e, l)| {
                Ok(RecordVersion {
                    record_id,
                    owner: e.owner,
                    version: e.version,
                    digest: e.digest,
                    codec: e.codec,
                    timestamp: e.timestamp,
                    author: e.author,
                    block_number: l.block_number,
                    tx_hash: l.tx_hash,
                })
            })
            .collect()
    }

    /// A patient's record ids, oldest first.
    async fn records_of(&self, patient: Address) -> Result<Vec<u64>> {
        view(self, C::recordsOfCall { patient })
            .await?
            .into_iter()
            .map(|id| to_u64(id, "record id"))
            .collect()
    }

    /// A patient's id, if registered.
    async fn patient_id(&self, patient: Address) -> Result<Option<u64>> {
        let id = to_u64(
            view(self, C::patientIdCall { patient }).await?,
            "patient id",
        )?;
        Ok((id != 0).then_some(id))
    }

    /// The address behind a patient id, if any.
    async fn patient_address(&self, patient_id: u64) -> Result<Option<Address>> {
        let a = view(self, C::patientAddressCall(U256::from(patient_id))).await?;
        Ok((a != Address::ZERO).then_some(a))
    }

    /// Whether `who` is a registered provider.
    async fn is_provider(&self, who: Address) -> Result<bool> {
        view(self, C::isProviderCall { account: who }).await
    }

    /// The contract's admin.
    async fn admin(&self) -> Result<Address> {
        view(self, C::adminCall {}).await
    }

    /// A grant as stored.
    async fn grant(
        &self,
        patient: Address,
        provider: Address,
        record: Option<u64>,
    ) -> Result<GrantInfo> {
        let g = view(
            self,
            C::getGrantCall {
                patient,
                provider,
                recordId: U256::from(record.unwrap_or(0)),
            },
        )
        .await?;
        Ok(GrantInfo {
            expires_at: g.expiresAt,
            revoked_at: g.revokedAt,
            emergency_until: g.emergencyUntil,
        })
    }

    /// The node set.
    async fn node_set(&self) -> Result<NodeSet> {
        let r = view(self, C::nodeSetCall {}).await?;
        Ok(NodeSet {
            k: r.k,
            nodes: r.addrs.into_iter().zip(r.keys).collect(),
            epoch: r.epoch,
        })
    }

    /// Logged reads of one record, optionally by one reader and under one nonce.
    async fn access_log(
        &self,
        record_id: u64,
        reader: Option<Address>,
        nonce: Option<U256>,
    ) -> Result<Vec<AccessEntry>> {
        self.access_log_from(record_id, reader, nonce, 0).await
    }

    /// [`access_log`](Self::access_log) of reads logged at or after unix time `since`:
    /// only the blocks since then are searched (the custodians' "logged in the last ten
    /// minutes" check).
    async fn access_log_since(
        &self,
        record_id: u64,
        reader: Option<Address>,
        nonce: Option<U256>,
        since: u64,
    ) -> Result<Vec<AccessEntry>> {
        let from = self.first_block_since(since).await?.unwrap_or(0);
        let mut log = self.access_log_from(record_id, reader, nonce, from).await?;
        log.retain(|e| e.timestamp >= since);
        Ok(log)
    }

    /// [`access_log`](Self::access_log) from block `from_block` on.
    async fn access_log_from(
        &self,
        record_id: u64,
        reader: Option<Address>,
        nonce: Option<U256>,
        from_block: u64,
    ) -> Result<Vec<AccessEntry>> {
        let mut q = LogQuery::event::<C::AccessLogged>().topic(1, u256_topic(record_id));
        q.from_block = from_block;
        if let Some(reader) = reader {
            q = q.topic(2, addr_topic(reader));
        }
        if let Some(nonce) = nonce {
            q = q.topic(3, B256::from(nonce));
        }
        decoded_logs::<_, C::AccessLogged>(self, &q)
            .await?
            .into_iter()
            .map(|(e, l)| {
                Ok(AccessEntry {
                    record_id: to_u64(e.recordId, "record id")?,
                    reader: e.reader,
                    nonce: e.nonce,
                    timestamp: e.timestamp,
                    block_number: l.block_number,
                    tx_hash: l.tx_hash,
                    emergency: e.emergency,
                })
            })
            .collect()
    }

    /// Every (provider, record scope) `patient` ever granted, in first-grant order, from the
    /// `AccessGranted` events; [`grant`](Self::grant) gives each one's current state.
    async fn grants_of(&self, patient: Address) -> Result<Vec<(Address, Option<u64>)>> {
        let q = LogQuery::event::<C::AccessGranted>().topic(1, addr_topic(patient));
        let mut out: Vec<(Address, Option<u64>)> = Vec::new();
        for (e, _) in decoded_logs::<_, C::AccessGranted>(self, &q).await? {
            let id = to_u64(e.recordId, "record id")?;
            let scope = (e.provider, (id != 0).then_some(id));
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok(out)
    }

    /// Every (patient, record scope) that ever granted `provider` something, in first-grant
    /// order, from the `AccessGranted` events; [`grant`](Self::grant) gives each one's
    /// current state.
    async fn grants_to(&self, provider: Address) -> Result<Vec<(Address, Option<u64>)>> {
        let q = LogQuery::event::<C::AccessGranted>().topic(2, addr_topic(provider));
        let mut out: Vec<(Address, Option<u64>)> = Vec::new();
        for (e, _) in decoded_logs::<_, C::AccessGranted>(self, &q).await? {
            let id = to_u64(e.recordId, "record id")?;
            let scope = (e.patient, (id != 0).then_some(id));
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok(out)
    }

    /// Every break-glass access to a patient's records.
    async fn emergency_log(&self, patient: Address) -> Result<Vec<EmergencyEntry>> {
        let q = LogQuery::event::<C::EmergencyAccess>().topic(3, addr_topic(patient));
        decoded_logs::<_, C::EmergencyAccess>(self, &q)
            .await?
            .into_iter()
            .map(|(e, l)| {
                Ok(EmergencyEntry {
                    record_id: to_u64(e.recordId, "record id")?,
                    provider: e.provider,
                    patient: e.patient,
                    reason_digest: e.reasonDigest,
                    until: e.until,
                    block_number: l.block_number,
                    tx_hash: l.tx_hash,
                })
            })
            .collect()
    }
}

impl<T: Registry + ?Sized> RegistryExt for T {}
