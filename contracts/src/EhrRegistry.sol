// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title EhrRegistry — SecureEHR's one contract.
/// @notice Holds who owns which record, which manifest digest each version points at, who
/// may read it (grants with expiry, revocation, break-glass) and the access log, for a
/// network of organisations: the admin (the consortium) adds organisations, each with a
/// registrar that registers and deregisters its own providers. It holds no personal data:
/// addresses, digests, numbers and organisation names only.
/// @dev Gas is won in the storage layout: a record is one storage slot (owner, version,
/// time, link to the owner's previous record). The manifest digest of every version lives
/// in the `RecordVersion` event, which is chain data under the receipts root — writing it to
/// storage too would cost a second fresh slot (22,100 gas) per record. Grants live in one
/// mapping keyed by (patient, provider, recordId); recordId 0 means "all records". A grant
/// carries two rights, each with its own expiry and revocation: reading, and writing (a
/// provider adding versions to the patient's records, or new records the patient owns).
contract EhrRegistry {
    // ------------------------------------------------------------------ errors

    /// The caller is not the admin.
    error NotAdmin(address caller);
    /// The account is already registered in that role.
    error AlreadyRegistered(address account);
    /// The account is not a registered patient.
    error NotRegisteredPatient(address account);
    /// The account is not a registered provider.
    error NotRegisteredProvider(address account);
    /// No record has this id.
    error UnknownRecord(uint256 recordId);
    /// The record was erased with its owner's account: nothing reads or changes it.
    error RecordIsErased(uint256 recordId);
    /// The patient erased their account: no record is added for them.
    error PatientIsErased(address patient);
    /// Only the record's owner may do this.
    error NotRecordOwner(uint256 recordId, address caller);
    /// The reader has never been granted access to the record.
    error NoGrant(uint256 recordId, address reader);
    /// The reader's grant ended at `expiredAt`.
    error GrantExpired(uint256 recordId, address reader, uint64 expiredAt);
    /// The patient revoked the reader's grant.
    error GrantRevoked(uint256 recordId, address reader);
    /// An expiry must lie in the future.
    error ExpiryInPast(uint64 expiresAt, uint64 now);
    /// A zero digest names nothing.
    error ZeroDigest();
    /// Break-glass access needs a reason.
    error ZeroReason();
    /// The node set is malformed (lengths, threshold or a zero key).
    error InvalidNodeSet();
    /// The zero address cannot hold a role.
    error ZeroAddress();
    /// A time past the contract's 40-bit timestamps (year 36812): stored, it would wrap.
    error TimeOutOfRange(uint256 time);
    /// The caller is neither the admin nor the registrar of a current organisation.
    error NotRegistrar(address caller);
    /// The provider belongs to another organisation than the caller's.
    error NotOrganisationProvider(address provider, uint32 organisation);
    /// No current organisation has this id.
    error UnknownOrganisation(uint32 organisation);
    /// An organisation is removed only once it has no providers left.
    error OrganisationHasProviders(uint32 organisation, uint32 providers);
    /// An organisation needs a name (1 to 64 bytes).
    error InvalidName();
    /// The writer has never been granted write access (recordId 0: to add records).
    error NoWriteGrant(uint256 recordId, address writer);
    /// The writer's write grant ended at `expiredAt`.
    error WriteGrantExpired(uint256 recordId, address writer, uint64 expiredAt);
    /// The patient revoked the writer's write grant.
    error WriteGrantRevoked(uint256 recordId, address writer);
    /// A grant offer past its own deadline is not redeemed.
    error OfferExpired(uint64 deadline, uint64 now);
    /// A grant offer is redeemed once: this patient's nonce was used.
    error OfferUsed(address patient, uint256 nonce);
    /// The offer's signature is malformed or not the patient's.
    error BadOfferSignature();

    // ------------------------------------------------------------------ events

    /// An account registered as a patient and got its sequential id.
    event PatientRegistered(address indexed patient, uint256 indexed patientId);
    /// The admin added an organisation; `registrar` registers its providers.
    event OrganisationAdded(uint32 indexed organisation, address indexed registrar, string name);
    /// The admin gave an organisation another registrar (a new key).
    event RegistrarChanged(uint32 indexed organisation, address indexed registrar);
    /// The admin removed an organisation (it had no providers left).
    event OrganisationRemoved(uint32 indexed organisation);
    /// A registrar (or the admin, organisation 0) registered a provider, or the provider
    /// changed its own directory entry (`updateProfile`): the latest one is its entry.
    /// `profile` is the sha2-256 digest of that entry (a raw block on the nodes:
    /// professional data).
    event ProviderRegistered(address indexed provider, uint32 indexed organisation, bytes32 profile);
    /// A provider was deregistered; its grants stop working at once.
    event ProviderDeregistered(address indexed provider, uint32 indexed organisation);
    /// A record version: version 1 comes from `addRecord` (or `addRecordFor`), later ones
    /// from `updateRecord`. `digest` and `codec` rebuild the manifest's CID (CIDv1,
    /// sha2-256). `author` wrote it: the owner, or a provider with write access.
    event RecordVersion(
        uint256 indexed recordId,
        address indexed owner,
        uint32 indexed version,
        bytes32 digest,
        uint64 codec,
        uint64 timestamp,
        address author
    );
    /// A patient erased their account: this record (its last version `lastVersion`) is
    /// erased. Custodians and storage nodes destroy its key shares and blocks on seeing it;
    /// its `RecordVersion` events (digests only) and the access log stay.
    event RecordErased(uint256 indexed recordId, address indexed owner, uint32 lastVersion);
    /// A patient erased their account (after the `RecordErased` of each record).
    event PatientErased(address indexed patient, uint256 indexed patientId, uint32 records);
    /// A patient granted a provider access until `expiresAt` (recordId 0: all records).
    event AccessGranted(address indexed patient, address indexed provider, uint256 indexed recordId, uint64 expiresAt);
    /// A patient revoked a grant; it stops working at the next call.
    event AccessRevoked(address indexed patient, address indexed provider, uint256 indexed recordId);
    /// A patient let a provider write until `expiresAt`: add versions to `recordId`, or
    /// (recordId 0) to every record of the patient and add new records the patient owns.
    event WriteGranted(address indexed patient, address indexed provider, uint256 indexed recordId, uint64 expiresAt);
    /// A patient revoked a write grant; it stops working at the next call.
    event WriteRevoked(address indexed patient, address indexed provider, uint256 indexed recordId);
    /// A read was allowed and logged. Custodians release key shares only for a logged nonce.
    /// `emergency`: only a break-glass window allowed it (its reason is in the reader's last
    /// `EmergencyAccess` on that record).
    event AccessLogged(
        uint256 indexed recordId, address indexed reader, uint256 indexed nonce, uint64 timestamp, bool emergency
    );
    /// Break-glass: a provider opened time-boxed access without a grant, giving a reason digest.
    event EmergencyAccess(
        uint256 indexed recordId, address indexed provider, address indexed patient, bytes32 reasonDigest, uint64 until
    );
    /// The admin replaced the custodian/storage node set.
    event NodeSetChanged(uint256 indexed epoch, uint8 k, uint8 n);
    /// The admin role moved.
    event AdminChanged(address indexed previous, address indexed admin);
    /// A patient's signed grant offer was redeemed by `provider` (its `AccessGranted` is
    /// emitted with it); the nonce is used up.
    event OfferRedeemed(address indexed patient, uint256 indexed nonce, address indexed provider);

    // ------------------------------------------------------------------ storage

    /// One slot per record. `version` 0 marks an erased record (versions start at 1).
    struct Record {
        address owner;
        uint24 version;
        uint40 updatedAt;
        uint32 prevOfOwner; // the owner's previous record id, 0 at the end of the list
    }

    /// One slot per patient.
    struct Patient {
        uint32 id;
        uint32 recordCount;
        uint32 lastRecord;
        bool erased;
    }

    /// One slot per provider address.
    struct Provider {
        bool active;
        uint32 organisation; // 0: registered by the admin itself
    }

    /// One slot per organisation (ids from 1).
    struct Organisation {
        address registrar;
        uint32 providers; // currently registered
        bool active;
    }

    /// One slot per (patient, provider, recordId): reading, break-glass and writing.
    struct Grant {
        uint40 expiresAt;
        uint40 revokedAt;
        uint40 emergencyUntil;
        uint40 writeUntil;
        uint40 writeRevokedAt;
    }

    /// How long a break-glass grant lasts.
    uint64 public constant EMERGENCY_WINDOW = 4 hours;

    /// Access decision codes returned by `accessStatus`.
    uint8 public constant ALLOWED = 0;
    uint8 public constant UNKNOWN_RECORD = 1;
    uint8 public constant NOT_PROVIDER = 2;
    uint8 public constant NO_GRANT = 3;
    uint8 public constant EXPIRED = 4;
    uint8 public constant REVOKED = 5;
    /// The record was erased (`accessStatus`, `writeStatus`).
    uint8 public constant ERASED = 6;

    address public admin;
    uint32 public recordCount;
    uint32 public patientCount;
    uint32 public nodeSetEpoch;
    uint8 public threshold;

    mapping(uint256 => Record) internal records;
    mapping(address => Patient) internal patients;
    mapping(uint256 => address) public patientAddress;
    mapping(address => Provider) internal providers;
    mapping(uint32 => Organisation) internal organisations;
    /// The current organisation whose registrar an address is (0: none).
    mapping(address => uint32) public registrarOrganisation;
    uint32 public organisationCount;
    mapping(bytes32 => Grant) internal grants;
    address[] internal nodes;
    bytes32[] internal nodeKeys;
    /// The grant-offer nonces each patient has had redeemed.
    mapping(address => mapping(uint256 => bool)) public offerUsed;

    /// EIP-712: the domain every SecureEHR signature on this deployment is made in (the
    /// custodians' share requests use the same one), and the grant offer's type.
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant GRANT_OFFER_TYPEHASH = keccak256(
        "GrantOffer(address patient,uint256 recordId,uint64 expiresAt,uint256 nonce,uint64 deadline)"
    );
    /// Signatures with a high `s` are the malleable twin of a low one (EIP-2).
    uint256 internal constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    constructor() {
        admin = msg.sender;
        emit AdminChanged(address(0), msg.sender);
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    // ------------------------------------------------------------------ admin

    /// Moves the admin role.
    function transferAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        emit AdminChanged(admin, newAdmin);
        admin = newAdmin;
    }

    /// Adds an organisation whose providers `registrar` registers; returns its id (from 1).
    function addOrganisation(address registrar, string calldata name) external onlyAdmin returns (uint32 id) {
        if (bytes(name).length == 0 || bytes(name).length > 64) revert InvalidName();
        _checkNewRegistrar(registrar);
        id = organisationCount + 1;
        organisationCount = id;
        organisations[id] = Organisation({registrar: registrar, providers: 0, active: true});
        registrarOrganisation[registrar] = id;
        emit OrganisationAdded(id, registrar, name);
    }

    /// Gives organisation `id` a new registrar; the old one loses the role at once.
    function setRegistrar(uint32 id, address registrar) external onlyAdmin {
        Organisation storage o = _current(id);
        _checkNewRegistrar(registrar);
        delete registrarOrganisation[o.registrar];
        o.registrar = registrar;
        registrarOrganisation[registrar] = id;
        emit RegistrarChanged(id, registrar);
    }

    /// Removes organisation `id`, which must have no providers left; its registrar loses
    /// the role.
    function removeOrganisation(uint32 id) external onlyAdmin {
        Organisation storage o = _current(id);
        if (o.providers != 0) revert OrganisationHasProviders(id, o.providers);
        delete registrarOrganisation[o.registrar];
        o.active = false;
        emit OrganisationRemoved(id);
    }

    /// Registers a provider (doctor, clinic) in the caller's organisation: a registrar's,
    /// or 0 for the admin. `profile` is the digest of its directory entry.
    function registerProvider(address provider, bytes32 profile) external {
        uint32 org = _callerOrganisation();
        if (provider == address(0)) revert ZeroAddress();
        if (providers[provider].active) revert AlreadyRegistered(provider);
        providers[provider] = Provider({active: true, organisation: org});
        if (org != 0) organisations[org].providers += 1;
        emit ProviderRegistered(provider, org, profile);
    }

    /// A registered provider replaces its own directory entry (display name, specialty):
    /// `profile` is the new entry's digest. Its registration and grants are unchanged.
    function updateProfile(bytes32 profile) external {
        Provider memory p = providers[msg.sender];
        if (!p.active) revert NotRegisteredProvider(msg.sender);
        emit ProviderRegistered(msg.sender, p.organisation, profile);
    }

    /// Deregisters a provider: every grant it holds stops working at once. A registrar
    /// deregisters its own organisation's providers only; the admin any.
    function deregisterProvider(address provider) external {
        uint32 caller = _callerOrganisation();
        Provider memory p = providers[provider];
        if (!p.active) revert NotRegisteredProvider(provider);
        if (msg.sender != admin && p.organisation != caller) {
            revert NotOrganisationProvider(provider, p.organisation);
        }
        providers[provider].active = false;
        if (p.organisation != 0) organisations[p.organisation].providers -= 1;
        emit ProviderDeregistered(provider, p.organisation);
    }

    /// Replaces the custodian/storage node set: node i has address `addrs[i]` and X25519
    /// public key `keys[i]`; any `k` of the `n` rebuild a record.
    function setNodeSet(address[] calldata addrs, bytes32[] calldata keys, uint8 k) external onlyAdmin {
        uint256 n = addrs.length;
        if (n != keys.length || n > 255 || k < 2 || k > n) revert InvalidNodeSet();
        for (uint256 i = 0; i < n; i++) {
            if (addrs[i] == address(0) || keys[i] == bytes32(0)) revert InvalidNodeSet();
        }
        nodes = addrs;
        nodeKeys = keys;
        threshold = k;
        uint32 epoch = nodeSetEpoch + 1;
        nodeSetEpoch = epoch;
        emit NodeSetChanged(epoch, k, uint8(n));
    }

    // ------------------------------------------------------------------ patients and records

    /// Registers the caller as a patient and returns its sequential patient id (from 1).
    function registerPatient() external returns (uint256) {
        if (patients[msg.sender].id != 0) revert AlreadyRegistered(msg.sender);
        uint32 id = patientCount + 1;
        patientCount = id;
        patients[msg.sender].id = id;
        patientAddress[id] = msg.sender;
        emit PatientRegistered(msg.sender, id);
        return id;
    }

    /// Adds a record owned by the caller, pointing at the manifest with this digest; returns
    /// its sequential id (from 1).
    function addRecord(bytes32 digest, uint64 codec) external returns (uint256 recordId) {
        return _addRecord(msg.sender, digest, codec);
    }

    /// A provider with write access to all of `patient`'s records adds a record that
    /// `patient` owns (the provider is its version 1's author); returns its id.
    function addRecordFor(address patient, bytes32 digest, uint64 codec) external returns (uint256 recordId) {
        if (patients[patient].id == 0) revert NotRegisteredPatient(patient);
        (uint8 status, uint64 when) = _writeStatus(patient, msg.sender, 0);
        if (status != ALLOWED) _denyWrite(status, 0, msg.sender, when);
        return _addRecord(patient, digest, codec);
    }

    /// Points a record at a new manifest: a new version, by its owner or by a provider
    /// with write access to it. Old versions stay in the `RecordVersion` events.
    function updateRecord(uint256 recordId, bytes32 digest, uint64 codec) external returns (uint32 version) {
        if (digest == bytes32(0)) revert ZeroDigest();
        Record storage r = records[recordId];
        address owner = r.owner;
        if (owner == address(0)) revert UnknownRecord(recordId);
        if (r.version == 0) revert RecordIsErased(recordId);
        if (owner != msg.sender) {
            if (!providers[msg.sender].active) revert NotRecordOwner(recordId, msg.sender);
            (uint8 status, uint64 when) = _writeStatus(owner, msg.sender, recordId);
            if (status != ALLOWED) _denyWrite(status, recordId, msg.sender, when);
        }
        uint24 v = r.version + 1;
        r.version = v;
        r.updatedAt = _time40(block.timestamp);
        emit RecordVersion(recordId, owner, v, digest, codec, uint64(block.timestamp), msg.sender);
        return v;
    }

    // ------------------------------------------------------------------ grants

    /// Lets `provider` read the caller's record `recordId` (0: all the caller's records)
    /// until `expiresAt`. Granting again replaces the expiry and lifts a revocation.
    /// @dev Grants are keyed by the caller, so a grant on someone else's record is inert.
    function grantAccess(address provider, uint256 recordId, uint64 expiresAt) external {
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt, uint64(block.timestamp));
        uint40 until = _time40(expiresAt);
        if (!providers[provider].active) revert NotRegisteredProvider(provider);
        Grant storage g = grants[_grantKey(msg.sender, provider, recordId)];
        g.expiresAt = until;
        g.revokedAt = 0;
        emit AccessGranted(msg.sender, provider, recordId, expiresAt);
    }

    /// Redeems a patient's signed grant offer (EIP-712 `GrantOffer`): the caller, a
    /// registered provider — whoever redeems it first — may read `recordId` (0: all the
    /// patient's records) until `expiresAt`, as if the patient had called `grantAccess`
    /// for it. The offer is good until its own `deadline` and once: the patient's `nonce`
    /// is used up. The patient need not be online.
    function grantAccessBySig(
        address patient,
        uint256 recordId,
        uint64 expiresAt,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external {
        if (deadline < block.timestamp) revert OfferExpired(deadline, uint64(block.timestamp));
        if (offerUsed[patient][nonce]) revert OfferUsed(patient, nonce);
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                domainSeparator(),
                keccak256(abi.encode(GRANT_OFFER_TYPEHASH, patient, recordId, expiresAt, nonce, deadline))
            )
        );
        if (patient == address(0) || _recover(digest, signature) != patient) revert BadOfferSignature();
        if (patients[patient].id == 0) revert NotRegisteredPatient(patient);
        if (patients[patient].erased) revert PatientIsErased(patient);
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt, uint64(block.timestamp));
        uint40 until = _time40(expiresAt);
        if (!providers[msg.sender].active) revert NotRegisteredProvider(msg.sender);
        offerUsed[patient][nonce] = true;
        Grant storage g = grants[_grantKey(patient, msg.sender, recordId)];
        g.expiresAt = until;
        g.revokedAt = 0;
        emit AccessGranted(patient, msg.sender, recordId, expiresAt);
        emit OfferRedeemed(patient, nonce, msg.sender);
    }

    /// The EIP-712 domain separator: name "SecureEHR", version "1", this chain, this contract.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("SecureEHR"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// Lets `provider` write until `expiresAt`: add versions to the caller's record
    /// `recordId`, or (0) to all the caller's records and add new records the caller owns.
    /// Reading is granted apart (`grantAccess`). Granting again replaces the expiry and
    /// lifts a revocation.
    function grantWrite(address provider, uint256 recordId, uint64 expiresAt) external {
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt, uint64(block.timestamp));
        uint40 until = _time40(expiresAt);
        if (!providers[provider].active) revert NotRegisteredProvider(provider);
        if (recordId != 0 && records[recordId].owner != msg.sender) revert NotRecordOwner(recordId, msg.sender);
        Grant storage g = grants[_grantKey(msg.sender, provider, recordId)];
        g.writeUntil = until;
        g.writeRevokedAt = 0;
        emit WriteGranted(msg.sender, provider, recordId, expiresAt);
    }

    /// Revokes the caller's write grant to `provider` for `recordId` (0: the all-records
    /// one); reading stays as it is.
    function revokeWrite(address provider, uint256 recordId) external {
        Grant storage g = grants[_grantKey(msg.sender, provider, recordId)];
        if (g.writeUntil == 0) revert NoWriteGrant(recordId, provider);
        g.writeRevokedAt = _time40(block.timestamp);
        emit WriteRevoked(msg.sender, provider, recordId);
    }

    /// Revokes the caller's grant to `provider` for `recordId` (0: the all-records grant).
    /// It takes effect at the next call. Break-glass access on that record ends too.
    function revokeAccess(address provider, uint256 recordId) external {
        Grant storage g = grants[_grantKey(msg.sender, provider, recordId)];
        if (g.expiresAt == 0 && g.emergencyUntil == 0) revert NoGrant(recordId, provider);
        g.revokedAt = _time40(block.timestamp);
        g.emergencyUntil = 0;
        emit AccessRevoked(msg.sender, provider, recordId);
    }

    /// Ends everything `provider` holds on the caller's records: the all-records grant,
    /// every record grant, every write grant and every break-glass window. Emits
    /// `AccessRevoked` for each scope that allowed reads and `WriteRevoked` for each that
    /// allowed writes; reverts with `NoGrant(0, provider)` when none did.
    /// @dev Walks the caller's records (one grant slot and one record slot each).
    function revokeAll(address provider) external {
        uint40 now_ = _time40(block.timestamp);
        uint256 ended = _revokeLive(provider, 0, now_);
        uint256 id = patients[msg.sender].lastRecord;
        while (id != 0) {
            ended += _revokeLive(provider, id, now_);
            id = records[id].prevOfOwner;
        }
        if (ended == 0) revert NoGrant(0, provider);
    }

    // ------------------------------------------------------------------ erasure

    /// The caller leaves: every record of theirs is erased (`RecordErased` each, then
    /// `PatientErased`). From then on nothing reads, changes or adds a record of theirs;
    /// custodians and storage nodes destroy the key shares and blocks when they see the
    /// events. No personal data is involved: ids and versions only. Erasing again only
    /// emits `PatientErased` again.
    /// @dev Walks the caller's records (one record slot each).
    function eraseAccount() external {
        Patient storage p = patients[msg.sender];
        if (p.id == 0) revert NotRegisteredPatient(msg.sender);
        p.erased = true;
        uint256 id = p.lastRecord;
        while (id != 0) {
            Record storage r = records[id];
            uint24 v = r.version;
            if (v != 0) {
                r.version = 0;
                emit RecordErased(id, msg.sender, v);
            }
            id = r.prevOfOwner;
        }
        emit PatientErased(msg.sender, p.id, p.recordCount);
    }

    /// Whether record `recordId` exists and was erased.
    function isErased(uint256 recordId) external view returns (bool) {
        Record memory r = records[recordId];
        return r.owner != address(0) && r.version == 0;
    }

    // ------------------------------------------------------------------ reads

    /// Logs a read of `recordId` by the caller under `nonce`; reverts with the reason when
    /// the caller may not read it. Custodians release key shares only for a logged nonce.
    function logAccess(uint256 recordId, uint256 nonce) external {
        (uint8 status, uint64 when, bool emergency) = _status(msg.sender, recordId);
        if (status != ALLOWED) _deny(status, recordId, msg.sender, when);
        emit AccessLogged(recordId, msg.sender, nonce, uint64(block.timestamp), emergency);
    }

    /// Break-glass: a registered provider opens access to `recordId` for `EMERGENCY_WINDOW`
    /// without a grant, giving the digest of a written reason; the patient sees the event.
    /// The access itself is logged under `nonce`.
    function emergencyAccess(uint256 recordId, bytes32 reasonDigest, uint256 nonce) external {
        if (reasonDigest == bytes32(0)) revert ZeroReason();
        if (!providers[msg.sender].active) revert NotRegisteredProvider(msg.sender);
        Record memory r = records[recordId];
        address owner = r.owner;
        if (owner == address(0)) revert UnknownRecord(recordId);
        if (r.version == 0) revert RecordIsErased(recordId);
        uint40 until = _time40(block.timestamp + EMERGENCY_WINDOW);
        grants[_grantKey(owner, msg.sender, recordId)].emergencyUntil = until;
        emit EmergencyAccess(recordId, msg.sender, owner, reasonDigest, until);
        emit AccessLogged(recordId, msg.sender, nonce, uint64(block.timestamp), true);
    }

    // ------------------------------------------------------------------ views

    /// Whether `reader` may read `recordId` now.
    function canAccess(address reader, uint256 recordId) external view returns (bool) {
        (uint8 status,,) = _status(reader, recordId);
        return status == ALLOWED;
    }

    /// The access decision for `reader` on `recordId` now, with the time it refers to
    /// (grant or break-glass end when allowed, expiry when expired, revocation when revoked).
    function accessStatus(address reader, uint256 recordId) external view returns (uint8 status, uint64 when) {
        (status, when,) = _status(reader, recordId);
    }

    /// Whether `account` is a registered provider now.
    function isProvider(address account) external view returns (bool) {
        return providers[account].active;
    }

    /// A provider's registration: whether it is registered now and its organisation (that
    /// of its last registration).
    function providerOf(address account) external view returns (bool active, uint32 organisation) {
        Provider memory p = providers[account];
        return (p.active, p.organisation);
    }

    /// An organisation: its registrar, how many providers it has now and whether it is
    /// current (not removed). Id 0 and unknown ids read as zeros.
    function getOrganisation(uint32 id) external view returns (address registrar, uint32 providerCount, bool active) {
        Organisation memory o = organisations[id];
        return (o.registrar, o.providers, o.active);
    }

    /// A record's owner, current version and the time of its last change.
    function getRecord(uint256 recordId) external view returns (address owner, uint32 version, uint64 updatedAt) {
        Record memory r = records[recordId];
        if (r.owner == address(0)) revert UnknownRecord(recordId);
        if (r.version == 0) revert RecordIsErased(recordId);
        return (r.owner, r.version, r.updatedAt);
    }

    /// A patient's sequential id (0 when not registered).
    function patientId(address patient) external view returns (uint256) {
        return patients[patient].id;
    }

    /// A patient's record ids, oldest first.
    function recordsOf(address patient) external view returns (uint256[] memory ids) {
        Patient memory p = patients[patient];
        ids = new uint256[](p.recordCount);
        uint256 id = p.lastRecord;
        for (uint256 i = p.recordCount; i > 0; i--) {
            ids[i - 1] = id;
            id = records[id].prevOfOwner;
        }
    }

    /// Whether `writer` may write now, with the time it refers to (as `accessStatus`):
    /// add a version to `patient`'s record `recordId`, or (0) add a record `patient` owns.
    function writeStatus(address writer, address patient, uint256 recordId)
        external
        view
        returns (uint8 status, uint64 when)
    {
        if (recordId != 0 && records[recordId].owner != patient) return (UNKNOWN_RECORD, 0);
        if (recordId == 0 && patients[patient].id == 0) return (UNKNOWN_RECORD, 0);
        if (recordId != 0 && records[recordId].version == 0) return (ERASED, 0);
        if (patients[patient].erased) return (ERASED, 0);
        return _writeStatus(patient, writer, recordId);
    }

    /// A write grant as stored: expiry and revocation time (0 when unset).
    function getWriteGrant(address patient, address provider, uint256 recordId)
        external
        view
        returns (uint64 expiresAt, uint64 revokedAt)
    {
        Grant memory g = grants[_grantKey(patient, provider, recordId)];
        return (g.writeUntil, g.writeRevokedAt);
    }

    /// A grant as stored: expiry, revocation time and break-glass end (0 when unset).
    function getGrant(address patient, address provider, uint256 recordId)
        external
        view
        returns (uint64 expiresAt, uint64 revokedAt, uint64 emergencyUntil)
    {
        Grant memory g = grants[_grantKey(patient, provider, recordId)];
        return (g.expiresAt, g.revokedAt, g.emergencyUntil);
    }

    /// The custodian/storage node set: threshold k, node addresses and X25519 keys.
    function nodeSet() external view returns (uint8 k, address[] memory addrs, bytes32[] memory keys, uint32 epoch) {
        return (threshold, nodes, nodeKeys, nodeSetEpoch);
    }

    // ------------------------------------------------------------------ internals

    /// The caller's organisation: 0 for the admin, else the one it is the registrar of.
    function _callerOrganisation() internal view returns (uint32) {
        if (msg.sender == admin) return 0;
        uint32 org = registrarOrganisation[msg.sender];
        if (org == 0) revert NotRegistrar(msg.sender);
        return org;
    }

    /// Organisation `id`, if it is current.
    function _current(uint32 id) internal view returns (Organisation storage o) {
        o = organisations[id];
        if (!o.active) revert UnknownOrganisation(id);
    }

    /// A registrar must be a fresh address: not zero, not the admin, not another registrar.
    function _checkNewRegistrar(address registrar) internal view {
        if (registrar == address(0)) revert ZeroAddress();
        if (registrar == admin || registrarOrganisation[registrar] != 0) revert AlreadyRegistered(registrar);
    }

    function _grantKey(address patient, address provider, uint256 recordId) internal pure returns (bytes32 key) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, patient)
            mstore(add(ptr, 0x20), provider)
            mstore(add(ptr, 0x40), recordId)
            key := keccak256(ptr, 0x60)
        }
    }

    /// The access decision, the time it refers to, and whether only a break-glass window
    /// allows it.
    function _status(address reader, uint256 recordId) internal view returns (uint8, uint64, bool) {
        Record memory r = records[recordId];
        address owner = r.owner;
        if (owner == address(0)) return (UNKNOWN_RECORD, 0, false);
        if (r.version == 0) return (ERASED, 0, false);
        if (reader == owner) return (ALLOWED, 0, false);
        if (!providers[reader].active) return (NOT_PROVIDER, 0, false);
        uint64 now_ = uint64(block.timestamp);
        Grant memory all = grants[_grantKey(owner, reader, 0)];
        if (all.revokedAt == 0 && all.expiresAt > now_) return (ALLOWED, all.expiresAt, false);
        Grant memory one = grants[_grantKey(owner, reader, recordId)];
        if (one.revokedAt == 0 && one.expiresAt > now_) return (ALLOWED, one.expiresAt, false);
        if (one.emergencyUntil > now_) return (ALLOWED, one.emergencyUntil, true);
        // Denied: report the most specific reason, the record's own grant first.
        if (one.revokedAt != 0) return (REVOKED, one.revokedAt, false);
        if (one.expiresAt != 0) return (EXPIRED, one.expiresAt, false);
        if (all.revokedAt != 0) return (REVOKED, all.revokedAt, false);
        if (all.expiresAt != 0) return (EXPIRED, all.expiresAt, false);
        return (NO_GRANT, 0, false);
    }

    /// Adds a record owned by `owner`, written by the caller.
    function _addRecord(address owner, bytes32 digest, uint64 codec) internal returns (uint256) {
        if (digest == bytes32(0)) revert ZeroDigest();
        Patient memory p = patients[owner];
        if (p.id == 0) revert NotRegisteredPatient(owner);
        if (p.erased) revert PatientIsErased(owner);
        uint32 id = recordCount + 1;
        recordCount = id;
        records[id] = Record({owner: owner, version: 1, updatedAt: _time40(block.timestamp), prevOfOwner: p.lastRecord});
        patients[owner] = Patient({id: p.id, recordCount: p.recordCount + 1, lastRecord: id, erased: false});
        emit RecordVersion(id, owner, 1, digest, codec, uint64(block.timestamp), msg.sender);
        return id;
    }

    /// The write decision for `writer` on `owner`'s record `recordId` (0: adding records),
    /// with the time it refers to. The all-records grant covers every record.
    function _writeStatus(address owner, address writer, uint256 recordId) internal view returns (uint8, uint64) {
        if (!providers[writer].active) return (NOT_PROVIDER, 0);
        uint64 now_ = uint64(block.timestamp);
        Grant memory all = grants[_grantKey(owner, writer, 0)];
        if (all.writeRevokedAt == 0 && all.writeUntil > now_) return (ALLOWED, all.writeUntil);
        Grant memory one;
        if (recordId != 0) {
            one = grants[_grantKey(owner, writer, recordId)];
            if (one.writeRevokedAt == 0 && one.writeUntil > now_) return (ALLOWED, one.writeUntil);
        }
        if (one.writeRevokedAt != 0) return (REVOKED, one.writeRevokedAt);
        if (one.writeUntil != 0) return (EXPIRED, one.writeUntil);
        if (all.writeRevokedAt != 0) return (REVOKED, all.writeRevokedAt);
        if (all.writeUntil != 0) return (EXPIRED, all.writeUntil);
        return (NO_GRANT, 0);
    }

    /// Revokes the caller's grant to `provider` on `recordId`, its write grant and its
    /// break-glass window, if any of them allows something now; returns 1 if it did.
    function _revokeLive(address provider, uint256 recordId, uint40 now_) internal returns (uint256) {
        Grant storage g = grants[_grantKey(msg.sender, provider, recordId)];
        bool granted = g.revokedAt == 0 && g.expiresAt > now_;
        bool emergency = g.emergencyUntil > now_;
        bool writes = g.writeRevokedAt == 0 && g.writeUntil > now_;
        if (!granted && !emergency && !writes) return 0;
        if (granted || emergency) {
            if (granted) g.revokedAt = now_;
            g.emergencyUntil = 0;
            emit AccessRevoked(msg.sender, provider, recordId);
        }
        if (writes) {
            g.writeRevokedAt = now_;
            emit WriteRevoked(msg.sender, provider, recordId);
        }
        return 1;
    }

    /// `t` as a stored 40-bit time, or `TimeOutOfRange` (never a silent wrap).
    /// The signer of `digest` (65 bytes r ‖ s ‖ v), or zero for a malformed or malleable
    /// signature.
    function _recover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if (uint256(s) > HALF_ORDER || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }

    function _time40(uint256 t) internal pure returns (uint40) {
        if (t > type(uint40).max) revert TimeOutOfRange(t);
        return uint40(t);
    }

    function _deny(uint8 status, uint256 recordId, address reader, uint64 when) internal pure {
        if (status == UNKNOWN_RECORD) revert UnknownRecord(recordId);
        if (status == ERASED) revert RecordIsErased(recordId);
        if (status == NOT_PROVIDER) revert NotRegisteredProvider(reader);
        if (status == EXPIRED) revert GrantExpired(recordId, reader, when);
        if (status == REVOKED) revert GrantRevoked(recordId, reader);
        revert NoGrant(recordId, reader);
    }

    function _denyWrite(uint8 status, uint256 recordId, address writer, uint64 when) internal pure {
        if (status == NOT_PROVIDER) revert NotRegisteredProvider(writer);
        if (status == EXPIRED) revert WriteGrantExpired(recordId, writer, when);
        if (status == REVOKED) revert WriteGrantRevoked(recordId, writer);
        revert NoWriteGrant(recordId, writer);
    }
}
