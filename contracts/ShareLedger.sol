// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @notice The part of PartyRegistry that ShareLedger reads: role membership, checked at call time.
interface IPartyRegistry {
    function hasRole(bytes32 role, address account) external view returns (bool);
}

/// @title ShareLedger: the catalog, share requests, decisions, co-signatures, grants and disputes
/// @notice The on-chain half of government data sharing (政府数据共享). Every state change is authorised by an
/// EIP-712 signature of the acting party, checked here with ecrecover, so the operator that relays the
/// transactions (any account may relay) cannot forge a catalog entry, a request, an approval, a co-signature,
/// a revocation or a dispute. Each signed struct carries the signer's current `nonces(signer)` and the domain
/// carries the chain id and this contract's address, so no signature can be replayed here, on another chain or
/// on another deployment. Roles are read from PartyRegistry at call time: a suspended party holds no role and
/// is refused at once.
/// @dev Rules implemented: one resource, one provider (一数一源) with consecutive metadata versions; unconditional
/// resources are granted automatically in the request's transaction (智能合约自动共享, 筑府发〔2017〕6号);
/// conditional ones need the provider's decision, and from level 3 (by default) also M-of-N registrar
/// co-signatures (多签) that endorse exactly the decision's struct hash; disputed data (疑义数据校核) is answered by
/// the provider, a correction publishing a new metadata version. Checks run in a fixed order: signature,
/// authority of the signer, nonce, then the state and validity of the message — except that a message about
/// an unknown request, grant or dispute is refused first (NotPending, NotActive, DisputeNotOpen), since
/// whose authority counts cannot be known without it.
/// @dev Batches (OpenZeppelin `Multicall`): `multicall(bytes[])` runs several calls of this contract in one
/// transaction — the platform publishes a department's catalog import as many `registerResource` calls at once.
/// Each inner call is a `delegatecall` to this contract, so `msg.sender` (the relayer, or the admin for
/// `setCosignThreshold`) and every check — signature, role, nonce, state — are exactly those of the same call
/// sent alone; the batch adds no authority. Inner calls run in order, so consecutive signatures of one signer
/// carry consecutive nonces. If any inner call reverts, the whole batch reverts with that call's own custom
/// error bubbled up unchanged, and nothing of the batch is kept.
contract ShareLedger is AccessControl, EIP712, Nonces, Multicall {
    // ------------------------------------------------------------------------------------------------------
    // Types

    /// @notice Share type of a resource: 无条件共享, 有条件共享, 不予共享.
    uint8 public constant SHARE_UNCONDITIONAL = 0;
    uint8 public constant SHARE_CONDITIONAL = 1;
    uint8 public constant SHARE_NONE = 2;
    /// @notice Highest open type: 0 open 无条件开放, 1 on_application 依申请开放, 2 contract 契约式开放, 3 none 不予开放.
    uint8 public constant OPEN_NONE = 3;
    /// @notice Grant status values stored in `Grant.status`.
    uint8 public constant GRANT_NONE = 0;
    uint8 public constant GRANT_ACTIVE = 1;
    uint8 public constant GRANT_REVOKED = 2;

    /// @notice Lifecycle of a share request.
    enum RequestStatus {
        None,
        Pending,
        AwaitingCosign,
        Granted,
        Rejected
    }

    /// @notice Lifecycle of a dispute (疑义数据).
    enum DisputeStatus {
        None,
        Open,
        Answered
    }

    /// @notice What `statusAt` reports for a grant at a given time (DESIGN: active, revoked, expired).
    enum GrantState {
        None,
        Active,
        Revoked,
        Expired,
        NotYetValid
    }

    /// @notice A catalog entry version, signed by its provider.
    struct ResourceVersion {
        bytes32 resourceId;
        address provider;
        uint8 level;
        uint8 shareType;
        uint8 openType;
        bytes32 metadataHash;
        uint32 version;
        uint256 nonce;
    }

    /// @notice A share request (共享申请), signed by the requesting department.
    struct Request {
        bytes32 requestId;
        bytes32 resourceId;
        address requester;
        bytes32 purposeHash;
        bytes32 scopeHash;
        uint64 validFrom;
        uint64 validUntil;
        uint32 maxAccesses;
        uint256 nonce;
    }

    /// @notice The provider's decision on a pending request; on approval its terms become the grant's.
    struct Decision {
        bytes32 requestId;
        bool approve;
        bytes32 conditionsHash;
        bytes32 reasonHash;
        uint64 validFrom;
        uint64 validUntil;
        uint32 maxAccesses;
        uint256 nonce;
    }

    /// @notice A registrar's co-signature of an approving decision, named by its EIP-712 struct hash.
    struct Cosign {
        bytes32 requestId;
        bytes32 decisionHash;
        uint256 nonce;
    }

    /// @notice Revocation of an active grant, signed by the resource's provider or a registrar.
    struct Revocation {
        bytes32 grantId;
        bytes32 reasonHash;
        uint256 nonce;
    }

    /// @notice A department contests a version of a resource's data (疑义数据校核).
    struct Dispute {
        bytes32 disputeId;
        bytes32 resourceId;
        uint32 version;
        address filer;
        bytes32 reasonHash;
        uint256 nonce;
    }

    /// @notice The provider's answer to a dispute; `corrected` publishes `newMetadataHash` as a new version.
    struct DisputeAnswer {
        bytes32 disputeId;
        bool corrected;
        bytes32 newMetadataHash;
        bytes32 answerHash;
        uint256 nonce;
    }

    /// @notice The current state of a catalog entry; version 0 means unknown.
    struct Resource {
        address provider;
        uint8 level;
        uint8 shareType;
        uint8 openType;
        uint32 version;
        uint64 updatedAt;
        bytes32 metadataHash;
    }

    /// @notice What the chain keeps of a share request. `requestHash` is the EIP-712 struct hash of the signed
    /// Request (its scope and window are in the RequestSubmitted event); `decisionHash` that of the decision.
    struct RequestRecord {
        bytes32 resourceId;
        address requester;
        uint64 submittedAt;
        RequestStatus status;
        uint8 cosignsRequired;
        uint8 cosignCount;
        bytes32 purposeHash;
        bytes32 requestHash;
        bytes32 decisionHash;
    }

    /// @notice The on-chain permission an approval (or an unconditional resource) creates. grantId = requestId.
    /// @dev Returned by `grantOf`; stored as the request's record plus its `Terms`, so nothing is written twice.
    struct Grant {
        bytes32 resourceId;
        address grantee;
        bytes32 purposeHash;
        bytes32 scopeHash;
        uint64 validFrom;
        uint64 validUntil;
        uint32 maxAccesses;
        uint8 status;
    }

    /// @notice A dispute as recorded on chain.
    struct DisputeRecord {
        bytes32 resourceId;
        address filer;
        uint32 version;
        DisputeStatus status;
        bool corrected;
        uint32 newVersion;
        bytes32 reasonHash;
        bytes32 answerHash;
    }

    /// @dev The granted terms of a request (the request's own if unconditional, else the approving decision's)
    /// and the grant's status; status GRANT_NONE while co-signatures are awaited. Two storage slots.
    struct Terms {
        bytes32 scopeHash;
        uint64 validFrom;
        uint64 validUntil;
        uint32 maxAccesses;
        uint8 status;
    }

    // ------------------------------------------------------------------------------------------------------
    // Constants

    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR");
    bytes32 public constant DEPARTMENT_ROLE = keccak256("DEPARTMENT");

    bytes32 public constant RESOURCE_VERSION_TYPEHASH = keccak256(
        "ResourceVersion(bytes32 resourceId,address provider,uint8 level,uint8 shareType,uint8 openType,"
        "bytes32 metadataHash,uint32 version,uint256 nonce)"
    );
    bytes32 public constant REQUEST_TYPEHASH = keccak256(
        "Request(bytes32 requestId,bytes32 resourceId,address requester,bytes32 purposeHash,bytes32 scopeHash,"
        "uint64 validFrom,uint64 validUntil,uint32 maxAccesses,uint256 nonce)"
    );
    bytes32 public constant DECISION_TYPEHASH = keccak256(
        "Decision(bytes32 requestId,bool approve,bytes32 conditionsHash,bytes32 reasonHash,uint64 validFrom,"
        "uint64 validUntil,uint32 maxAccesses,uint256 nonce)"
    );
    bytes32 public constant COSIGN_TYPEHASH = keccak256("Cosign(bytes32 requestId,bytes32 decisionHash,uint256 nonce)");
    bytes32 public constant REVOCATION_TYPEHASH =
        keccak256("Revocation(bytes32 grantId,bytes32 reasonHash,uint256 nonce)");
    bytes32 public constant DISPUTE_TYPEHASH = keccak256(
        "Dispute(bytes32 disputeId,bytes32 resourceId,uint32 version,address filer,bytes32 reasonHash,uint256 nonce)"
    );
    bytes32 public constant DISPUTE_ANSWER_TYPEHASH = keccak256(
        "DisputeAnswer(bytes32 disputeId,bool corrected,bytes32 newMetadataHash,bytes32 answerHash,uint256 nonce)"
    );

    /// @notice The party registry whose roles authorise every signer.
    IPartyRegistry public immutable registry;

    // ------------------------------------------------------------------------------------------------------
    // State

    mapping(bytes32 resourceId => Resource) private _resources;
    mapping(bytes32 resourceId => mapping(uint32 version => bytes32 metadataHash)) private _metadata;
    mapping(bytes32 requestId => RequestRecord) private _requests;
    mapping(bytes32 requestId => Terms) private _terms;
    mapping(bytes32 requestId => mapping(address registrar => bool)) private _cosigned;
    mapping(bytes32 disputeId => DisputeRecord) private _disputes;
    mapping(uint8 level => uint8 m) private _thresholds;

    // ------------------------------------------------------------------------------------------------------
    // Events

    /// @notice A resource version was published (also by a corrected dispute).
    event ResourceRegistered(
        bytes32 indexed resourceId,
        address indexed provider,
        uint32 version,
        uint8 level,
        uint8 shareType,
        uint8 openType,
        bytes32 metadataHash
    );
    /// @notice A signed share request was recorded; `requestHash` is its EIP-712 struct hash.
    event RequestSubmitted(
        bytes32 indexed requestId,
        bytes32 indexed resourceId,
        address indexed requester,
        bytes32 requestHash,
        bytes32 purposeHash,
        bytes32 scopeHash,
        uint64 validFrom,
        uint64 validUntil,
        uint32 maxAccesses
    );
    /// @notice The provider decided; `status` is Rejected, AwaitingCosign or Granted.
    event RequestDecided(
        bytes32 indexed requestId,
        address indexed provider,
        bool approve,
        bytes32 decisionHash,
        bytes32 reasonHash,
        RequestStatus status
    );
    /// @notice A registrar co-signed the approving decision `decisionHash` (`count` of `required` so far).
    event Cosigned(
        bytes32 indexed requestId, address indexed registrar, bytes32 decisionHash, uint8 count, uint8 required
    );
    /// @notice A grant became active.
    event GrantIssued(
        bytes32 indexed grantId,
        bytes32 indexed resourceId,
        address indexed grantee,
        bytes32 purposeHash,
        bytes32 scopeHash,
        uint64 validFrom,
        uint64 validUntil,
        uint32 maxAccesses
    );
    /// @notice An active grant was revoked by `by` (the provider or a registrar).
    event GrantRevoked(bytes32 indexed grantId, address indexed by, bytes32 reasonHash);
    /// @notice A department contested `version` of a resource.
    event DisputeFiled(
        bytes32 indexed disputeId, bytes32 indexed resourceId, address indexed filer, uint32 version, bytes32 reasonHash
    );
    /// @notice The provider answered a dispute; `newVersion` is 0 unless it corrected the data.
    event DisputeAnswered(
        bytes32 indexed disputeId, bytes32 indexed resourceId, bool corrected, uint32 newVersion, bytes32 answerHash
    );
    /// @notice Grants of resources of `level` now need `threshold` registrar co-signatures.
    event CosignThresholdSet(uint8 indexed level, uint8 threshold);

    // ------------------------------------------------------------------------------------------------------
    // Errors

    /// @notice The signature is malformed or was not made by the party the message names or requires.
    error InvalidSignature();
    /// @notice A constructor argument is the zero address.
    error ZeroAddress();
    /// @notice `account` does not (or no longer, if suspended) hold DEPARTMENT_ROLE in the registry.
    error NotDepartment(address account);
    /// @notice `account` does not hold REGISTRAR_ROLE in the registry.
    error NotRegistrar(address account);
    /// @notice `signer` is not `provider`, the resource's fixed provider (一数一源).
    error NotProvider(address signer, address provider);
    /// @notice `signer` is neither the provider of the grant's resource nor a registrar.
    error NotAuthorizedToRevoke(address signer);
    /// @notice Level, share type, open type or metadata hash out of range.
    error InvalidResource();
    /// @notice A new resource version must be the previous one plus one.
    error BadVersion(uint32 expected, uint32 given);
    /// @notice The resource was never registered.
    error UnknownResource(bytes32 resourceId);
    /// @notice `version` of the resource was never published.
    error UnknownVersion(bytes32 resourceId, uint32 version);
    /// @notice The resource's share type is none (不予共享): refused for a request, and for an approval or a
    /// co-signature when a later version made it so.
    error NotShareable(bytes32 resourceId);
    /// @notice A request with this id already exists.
    error RequestExists(bytes32 requestId);
    /// @notice A validity window must satisfy validFrom < validUntil.
    error InvalidWindow(uint64 validFrom, uint64 validUntil);
    /// @notice The request is not pending a decision.
    error NotPending(bytes32 requestId);
    /// @notice The request is not waiting for co-signatures.
    error NotAwaitingCosign(bytes32 requestId);
    /// @notice The co-signature endorses another decision than the provider's.
    error DecisionMismatch(bytes32 expected, bytes32 given);
    /// @notice Each registrar co-signs a request once.
    error AlreadyCosigned(bytes32 requestId, address registrar);
    /// @notice The grant is not active (never issued, or already revoked).
    error NotActive(bytes32 grantId);
    /// @notice The grant was revoked (by its provider or a registrar).
    error GrantIsRevoked(bytes32 grantId);
    /// @notice `accessor` is not the grant's grantee.
    error NotGrantee(address accessor, address grantee);
    /// @notice The grant's window opens at `validFrom`.
    error GrantNotYetValid(bytes32 grantId, uint64 validFrom);
    /// @notice The grant's window closed at `validUntil` (expiry by time).
    error GrantExpired(bytes32 grantId, uint64 validUntil);
    /// @notice A dispute with this id already exists.
    error DisputeExists(bytes32 disputeId);
    /// @notice The dispute does not exist or was already answered.
    error DisputeNotOpen(bytes32 disputeId);
    /// @notice Levels are 1 to 4 (分级).
    error InvalidLevel(uint8 level);
    /// @notice Levels 3 and 4 always need at least one registrar co-signature (多签).
    error InvalidThreshold(uint8 level, uint8 threshold);

    // ------------------------------------------------------------------------------------------------------
    // Construction and administration

    /// @param registry_ the PartyRegistry whose roles authorise signers.
    /// @param admin holds DEFAULT_ADMIN_ROLE: may set the co-signature thresholds, nothing else.
    constructor(address registry_, address admin) EIP712("sharetrail", "1") {
        if (registry_ == address(0) || admin == address(0)) revert ZeroAddress();
        registry = IPartyRegistry(registry_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setThreshold(3, 1);
        _setThreshold(4, 1);
    }

    /// @notice Number of registrar co-signatures a grant of a level-`level` resource needs; 0 = none.
    function cosignThreshold(uint8 level) external view returns (uint8) {
        return _thresholds[level];
    }

    /// @notice Set the M of M-of-N co-signing for `level`. Applies to decisions made from now on; a decision
    /// already waiting keeps the threshold in force when the provider decided. Levels 3–4 need M >= 1.
    function setCosignThreshold(uint8 level, uint8 m) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (level < 1 || level > 4) revert InvalidLevel(level);
        if (level >= 3 && m == 0) revert InvalidThreshold(level, m);
        _setThreshold(level, m);
    }

    function _setThreshold(uint8 level, uint8 m) private {
        _thresholds[level] = m;
        emit CosignThresholdSet(level, m);
    }

    // ------------------------------------------------------------------------------------------------------
    // 1. Catalog

    /// @notice Publish version `v.version` of a resource, signed by `v.provider` (a department). The first
    /// version fixes the provider (一数一源); each later one must come from it and be the previous plus one.
    function registerResource(ResourceVersion calldata v, bytes calldata sig) external {
        _expectSigner(resourceVersionStructHash(v), sig, v.provider);
        _requireDepartment(v.provider);
        Resource storage res = _resources[v.resourceId];
        if (res.version != 0 && res.provider != v.provider) revert NotProvider(v.provider, res.provider);
        _useCheckedNonce(v.provider, v.nonce);
        if (v.version != res.version + 1) revert BadVersion(res.version + 1, v.version);
        if (v.level < 1 || v.level > 4 || v.shareType > SHARE_NONE || v.openType > OPEN_NONE) {
            revert InvalidResource();
        }
        if (v.metadataHash == bytes32(0)) revert InvalidResource();
        res.provider = v.provider;
        res.level = v.level;
        res.shareType = v.shareType;
        res.openType = v.openType;
        _publish(v.resourceId, res, v.metadataHash);
    }

    /// @notice The current state of a resource (version 0: unknown).
    function resourceOf(bytes32 resourceId) external view returns (Resource memory) {
        return _resources[resourceId];
    }

    /// @notice The metadata hash of one version of a resource, 0x0 if that version does not exist.
    function metadataHashAt(bytes32 resourceId, uint32 version) external view returns (bytes32) {
        return _metadata[resourceId][version];
    }

    /// @dev Append the next version with `metadataHash` to `res` (whose other fields are already set).
    function _publish(bytes32 resourceId, Resource storage res, bytes32 metadataHash) private returns (uint32) {
        uint32 version = res.version + 1;
        res.version = version;
        res.updatedAt = uint64(block.timestamp);
        res.metadataHash = metadataHash;
        _metadata[resourceId][version] = metadataHash;
        emit ResourceRegistered(resourceId, res.provider, version, res.level, res.shareType, res.openType, metadataHash);
        return version;
    }

    // ------------------------------------------------------------------------------------------------------
    // 2. Requests

    /// @notice Record a share request signed by `r.requester` (a department). For an unconditional resource
    /// the grant (id = requestId) is issued in this same transaction with the request's own terms.
    function submitRequest(Request calldata r, bytes calldata sig) external {
        bytes32 structHash = requestStructHash(r);
        _expectSigner(structHash, sig, r.requester);
        _requireDepartment(r.requester);
        _useCheckedNonce(r.requester, r.nonce);
        if (r.validFrom >= r.validUntil) revert InvalidWindow(r.validFrom, r.validUntil);
        Resource storage res = _resources[r.resourceId];
        if (res.version == 0) revert UnknownResource(r.resourceId);
        if (res.shareType == SHARE_NONE) revert NotShareable(r.resourceId);
        RequestRecord storage rec = _requests[r.requestId];
        if (rec.status != RequestStatus.None) revert RequestExists(r.requestId);

        rec.resourceId = r.resourceId;
        rec.requester = r.requester;
        rec.submittedAt = uint64(block.timestamp);
        rec.purposeHash = r.purposeHash;
        rec.requestHash = structHash;
        emit RequestSubmitted(
            r.requestId,
            r.resourceId,
            r.requester,
            structHash,
            r.purposeHash,
            r.scopeHash,
            r.validFrom,
            r.validUntil,
            r.maxAccesses
        );
        if (res.shareType == SHARE_UNCONDITIONAL) {
            rec.status = RequestStatus.Granted;
            Terms storage t = _terms[r.requestId];
            t.scopeHash = r.scopeHash;
            t.validFrom = r.validFrom;
            t.validUntil = r.validUntil;
            t.maxAccesses = r.maxAccesses;
            _issue(r.requestId, rec, t);
        } else {
            rec.status = RequestStatus.Pending;
        }
    }

    /// @notice What the chain keeps of a request (status None: unknown).
    function requestOf(bytes32 requestId) external view returns (RequestRecord memory) {
        return _requests[requestId];
    }

    // ------------------------------------------------------------------------------------------------------
    // 3. Decisions and co-signatures

    /// @notice The provider's decision on a pending request. Rejection is final. Approval issues the grant
    /// with the decision's terms at once if the resource's level needs no co-signature, else waits for
    /// `cosignThreshold(level)` registrars to co-sign this decision's struct hash.
    function decide(Decision calldata d, bytes calldata sig) external {
        bytes32 structHash = decisionStructHash(d);
        address signer = _recover(structHash, sig);
        RequestRecord storage rec = _requests[d.requestId];
        if (rec.status == RequestStatus.None) revert NotPending(d.requestId);
        Resource storage res = _resources[rec.resourceId];
        if (signer != res.provider) revert NotProvider(signer, res.provider);
        _requireDepartment(signer);
        _useCheckedNonce(signer, d.nonce);
        if (rec.status != RequestStatus.Pending) revert NotPending(d.requestId);
        // The share type is read now, not at request time: a version published since may have made
        // the resource 不予共享, and then nothing may be granted from it.
        if (d.approve && res.shareType == SHARE_NONE) revert NotShareable(rec.resourceId);

        rec.decisionHash = structHash;
        RequestStatus status;
        if (!d.approve) {
            status = RequestStatus.Rejected;
        } else {
            if (d.validFrom >= d.validUntil) revert InvalidWindow(d.validFrom, d.validUntil);
            Terms storage t = _terms[d.requestId];
            t.scopeHash = d.conditionsHash;
            t.validFrom = d.validFrom;
            t.validUntil = d.validUntil;
            t.maxAccesses = d.maxAccesses;
            uint8 required = _thresholds[res.level];
            if (required == 0) {
                status = RequestStatus.Granted;
                _issue(d.requestId, rec, t);
            } else {
                status = RequestStatus.AwaitingCosign;
                rec.cosignsRequired = required;
            }
        }
        rec.status = status;
        emit RequestDecided(d.requestId, signer, d.approve, structHash, d.reasonHash, status);
    }

    /// @notice A registrar co-signs the approving decision of a request awaiting co-signatures; the grant is
    /// issued when the number of distinct co-signers reaches the threshold fixed at decision time.
    function cosign(Cosign calldata c, bytes calldata sig) external {
        address signer = _recover(cosignStructHash(c), sig);
        _requireRegistrar(signer);
        _useCheckedNonce(signer, c.nonce);
        RequestRecord storage rec = _requests[c.requestId];
        if (rec.status != RequestStatus.AwaitingCosign) revert NotAwaitingCosign(c.requestId);
        if (c.decisionHash != rec.decisionHash) revert DecisionMismatch(rec.decisionHash, c.decisionHash);
        if (_cosigned[c.requestId][signer]) revert AlreadyCosigned(c.requestId, signer);
        if (_resources[rec.resourceId].shareType == SHARE_NONE) revert NotShareable(rec.resourceId);

        _cosigned[c.requestId][signer] = true;
        uint8 count = rec.cosignCount + 1;
        rec.cosignCount = count;
        emit Cosigned(c.requestId, signer, c.decisionHash, count, rec.cosignsRequired);
        if (count >= rec.cosignsRequired) {
            rec.status = RequestStatus.Granted;
            _issue(c.requestId, rec, _terms[c.requestId]);
        }
    }

    /// @notice Whether `registrar` has co-signed the decision on `requestId`.
    function hasCosigned(bytes32 requestId, address registrar) external view returns (bool) {
        return _cosigned[requestId][registrar];
    }

    // ------------------------------------------------------------------------------------------------------
    // 4. Grants

    /// @notice The grant with this id (= the request id); status 0 if none was issued.
    function grantOf(bytes32 grantId) external view returns (Grant memory g) {
        Terms storage t = _terms[grantId];
        if (t.status == GRANT_NONE) return g;
        RequestRecord storage rec = _requests[grantId];
        g = Grant({
            resourceId: rec.resourceId,
            grantee: rec.requester,
            purposeHash: rec.purposeHash,
            scopeHash: t.scopeHash,
            validFrom: t.validFrom,
            validUntil: t.validUntil,
            maxAccesses: t.maxAccesses,
            status: t.status
        });
    }

    /// @notice Revoke an active grant, signed by the resource's provider or by a registrar.
    function revoke(Revocation calldata r, bytes calldata sig) external {
        address signer = _recover(revocationStructHash(r), sig);
        Terms storage g = _terms[r.grantId];
        if (g.status == GRANT_NONE) revert NotActive(r.grantId);
        bool byProvider = signer == _resources[_requests[r.grantId].resourceId].provider && _isDepartment(signer);
        if (!byProvider && !registry.hasRole(REGISTRAR_ROLE, signer)) revert NotAuthorizedToRevoke(signer);
        _useCheckedNonce(signer, r.nonce);
        if (g.status != GRANT_ACTIVE) revert NotActive(r.grantId);
        g.status = GRANT_REVOKED;
        emit GrantRevoked(r.grantId, signer, r.reasonHash);
    }

    /// @notice May `accessor` use grant `grantId` at time `at`? Active, the grantee's own, and
    /// validFrom <= at < validUntil (a grant expires by time, without a transaction).
    function isAuthorized(bytes32 grantId, address accessor, uint64 at) external view returns (bool) {
        Terms storage g = _terms[grantId];
        return g.status == GRANT_ACTIVE && g.validFrom <= at && at < g.validUntil
            && accessor == _requests[grantId].requester;
    }

    /// @notice The gateway's check before delivering data: returns if `accessor` may use grant `grantId` at
    /// time `at`, else reverts with the reason — NotActive (never issued), GrantIsRevoked, NotGrantee,
    /// GrantNotYetValid or GrantExpired — so a refusal names its cause, as `isAuthorized` cannot.
    function checkAuthorized(bytes32 grantId, address accessor, uint64 at) external view {
        Terms storage g = _terms[grantId];
        if (g.status == GRANT_NONE) revert NotActive(grantId);
        if (g.status == GRANT_REVOKED) revert GrantIsRevoked(grantId);
        address grantee = _requests[grantId].requester;
        if (accessor != grantee) revert NotGrantee(accessor, grantee);
        if (at < g.validFrom) revert GrantNotYetValid(grantId, g.validFrom);
        if (at >= g.validUntil) revert GrantExpired(grantId, g.validUntil);
    }

    /// @notice The state of a grant at time `at`, including the time-derived Expired and NotYetValid.
    function statusAt(bytes32 grantId, uint64 at) external view returns (GrantState) {
        Terms storage g = _terms[grantId];
        if (g.status == GRANT_NONE) return GrantState.None;
        if (g.status == GRANT_REVOKED) return GrantState.Revoked;
        if (at >= g.validUntil) return GrantState.Expired;
        if (at < g.validFrom) return GrantState.NotYetValid;
        return GrantState.Active;
    }

    /// @dev Activate the grant whose terms `t` are already written.
    function _issue(bytes32 grantId, RequestRecord storage rec, Terms storage t) private {
        t.status = GRANT_ACTIVE;
        emit GrantIssued(
            grantId, rec.resourceId, rec.requester, rec.purposeHash, t.scopeHash, t.validFrom, t.validUntil, t.maxAccesses
        );
    }

    // ------------------------------------------------------------------------------------------------------
    // 5. Disputes (疑义数据校核)

    /// @notice A department contests a published version of a resource's data.
    function fileDispute(Dispute calldata d, bytes calldata sig) external {
        _expectSigner(disputeStructHash(d), sig, d.filer);
        _requireDepartment(d.filer);
        _useCheckedNonce(d.filer, d.nonce);
        Resource storage res = _resources[d.resourceId];
        if (res.version == 0) revert UnknownResource(d.resourceId);
        if (d.version == 0 || d.version > res.version) revert UnknownVersion(d.resourceId, d.version);
        DisputeRecord storage rec = _disputes[d.disputeId];
        if (rec.status != DisputeStatus.None) revert DisputeExists(d.disputeId);
        rec.resourceId = d.resourceId;
        rec.filer = d.filer;
        rec.version = d.version;
        rec.status = DisputeStatus.Open;
        rec.reasonHash = d.reasonHash;
        emit DisputeFiled(d.disputeId, d.resourceId, d.filer, d.version, d.reasonHash);
    }

    /// @notice The provider answers an open dispute; a correction publishes `newMetadataHash` as the
    /// resource's next version.
    function answerDispute(DisputeAnswer calldata a, bytes calldata sig) external {
        address signer = _recover(disputeAnswerStructHash(a), sig);
        DisputeRecord storage rec = _disputes[a.disputeId];
        if (rec.status == DisputeStatus.None) revert DisputeNotOpen(a.disputeId);
        Resource storage res = _resources[rec.resourceId];
        if (signer != res.provider) revert NotProvider(signer, res.provider);
        _requireDepartment(signer);
        _useCheckedNonce(signer, a.nonce);
        if (rec.status != DisputeStatus.Open) revert DisputeNotOpen(a.disputeId);
        uint32 newVersion;
        if (a.corrected) {
            if (a.newMetadataHash == bytes32(0)) revert InvalidResource();
            newVersion = _publish(rec.resourceId, res, a.newMetadataHash);
        }
        rec.status = DisputeStatus.Answered;
        rec.corrected = a.corrected;
        rec.newVersion = newVersion;
        rec.answerHash = a.answerHash;
        emit DisputeAnswered(a.disputeId, rec.resourceId, a.corrected, newVersion, a.answerHash);
    }

    /// @notice A dispute as recorded (status None: unknown).
    function disputeOf(bytes32 disputeId) external view returns (DisputeRecord memory) {
        return _disputes[disputeId];
    }

    // ------------------------------------------------------------------------------------------------------
    // EIP-712 helpers for clients: `hashX` is the digest to sign, `xStructHash` the struct hash.

    /// @notice The EIP-712 domain separator (name "sharetrail", version "1", chain id, this address).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function resourceVersionStructHash(ResourceVersion calldata v) public pure returns (bytes32) {
        return keccak256(abi.encode(RESOURCE_VERSION_TYPEHASH, v));
    }

    function hashResourceVersion(ResourceVersion calldata v) external view returns (bytes32) {
        return _hashTypedDataV4(resourceVersionStructHash(v));
    }

    /// @notice The struct hash kept as `RequestRecord.requestHash`.
    function requestStructHash(Request calldata r) public pure returns (bytes32) {
        return keccak256(abi.encode(REQUEST_TYPEHASH, r));
    }

    function hashRequest(Request calldata r) external view returns (bytes32) {
        return _hashTypedDataV4(requestStructHash(r));
    }

    /// @notice The struct hash a co-signer endorses in `Cosign.decisionHash`.
    function decisionStructHash(Decision calldata d) public pure returns (bytes32) {
        return keccak256(abi.encode(DECISION_TYPEHASH, d));
    }

    function hashDecision(Decision calldata d) external view returns (bytes32) {
        return _hashTypedDataV4(decisionStructHash(d));
    }

    function cosignStructHash(Cosign calldata c) public pure returns (bytes32) {
        return keccak256(abi.encode(COSIGN_TYPEHASH, c));
    }

    function hashCosign(Cosign calldata c) external view returns (bytes32) {
        return _hashTypedDataV4(cosignStructHash(c));
    }

    function revocationStructHash(Revocation calldata r) public pure returns (bytes32) {
        return keccak256(abi.encode(REVOCATION_TYPEHASH, r));
    }

    function hashRevocation(Revocation calldata r) external view returns (bytes32) {
        return _hashTypedDataV4(revocationStructHash(r));
    }

    function disputeStructHash(Dispute calldata d) public pure returns (bytes32) {
        return keccak256(abi.encode(DISPUTE_TYPEHASH, d));
    }

    function hashDispute(Dispute calldata d) external view returns (bytes32) {
        return _hashTypedDataV4(disputeStructHash(d));
    }

    function disputeAnswerStructHash(DisputeAnswer calldata a) public pure returns (bytes32) {
        return keccak256(abi.encode(DISPUTE_ANSWER_TYPEHASH, a));
    }

    function hashDisputeAnswer(DisputeAnswer calldata a) external view returns (bytes32) {
        return _hashTypedDataV4(disputeAnswerStructHash(a));
    }

    // ------------------------------------------------------------------------------------------------------
    // Internals

    /// @dev The signer of the EIP-712 digest of `structHash`; malformed or high-s signatures are refused.
    function _recover(bytes32 structHash, bytes calldata sig) private view returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecoverCalldata(_hashTypedDataV4(structHash), sig);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
    }

    /// @dev For messages that name their signer: `expected` must be who signed `structHash`.
    function _expectSigner(bytes32 structHash, bytes calldata sig, address expected) private view {
        if (_recover(structHash, sig) != expected) revert InvalidSignature();
    }

    function _isDepartment(address account) private view returns (bool) {
        return registry.hasRole(DEPARTMENT_ROLE, account);
    }

    function _requireDepartment(address account) private view {
        if (!_isDepartment(account)) revert NotDepartment(account);
    }

    function _requireRegistrar(address account) private view {
        if (!registry.hasRole(REGISTRAR_ROLE, account)) revert NotRegistrar(account);
    }
}
