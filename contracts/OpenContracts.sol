// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @notice The part of PartyRegistry that OpenContracts reads: role membership, checked at call time.
interface IRoles {
    function hasRole(bytes32 role, address account) external view returns (bool);
}

/// @notice The part of ShareLedger that OpenContracts reads: a catalog entry's provider and open type.
interface ICatalog {
    struct Resource {
        address provider;
        uint8 level;
        uint8 shareType;
        uint8 openType;
        uint32 version;
        uint64 updatedAt;
        bytes32 metadataHash;
    }

    function resourceOf(bytes32 resourceId) external view returns (Resource memory);
}

/// @title OpenContracts: contract-mode and on-application opening of government data to enterprises
/// @notice 契约式开放: the platform operator proposes a contract naming an enterprise, resources, purposes, a
/// validity window, obligations and the hash of the terms document; it is effective only once the enterprise
/// and every provider of the named resources have signed it too (三方主体) — each an EIP-712 signature checked
/// here with ecrecover, so the relayer cannot forge consent. 依申请开放: an enterprise applies for one resource
/// with its qualifications (hashed), purpose and scope; the resource's provider and an operator review it, and
/// the second approval creates an effective, application-backed contract under the same rules. The operator
/// or the registrar suspends, resumes or terminates a contract with a reason. The registrar keeps the negative
/// list (负面清单): listed resources are never opened. Every status change is kept with its time, so
/// `checkAuthorized(contract, accessor, resource, purpose, at)` answers for any past access — what a proof
/// bundle verifier asks with nothing but a chain endpoint.
/// @dev Roles are read from PartyRegistry, resources from ShareLedger, both at call time. Signed structs carry
/// the signer's nonce and the domain the chain id and this address, so no signature replays.
contract OpenContracts is EIP712, Nonces {
    // ------------------------------------------------------------------------------------------------------
    // Types and constants

    uint8 public constant KIND_CONTRACT = 0;
    uint8 public constant KIND_APPLICATION = 1;
    uint8 public constant OPEN_ON_APPLICATION = 1;
    uint8 public constant OPEN_CONTRACT = 2;
    uint8 public constant ACTION_SUSPEND = 1;
    uint8 public constant ACTION_RESUME = 2;
    uint8 public constant ACTION_TERMINATE = 3;
    /// @notice Obligation bits: no re-identification, no onward transfer, derived products declared,
    /// public-interest release of derived products.
    uint16 public constant OBLIGATIONS_ALL = 15;
    uint16 public constant OBLIGATIONS_APPLICATION = 7;
    uint256 public constant MAX_ITEMS = 32;

    enum Status {
        None,
        Proposed,
        Effective,
        Suspended,
        Terminated
    }

    enum ApplicationStatus {
        None,
        Pending,
        Approved,
        Rejected
    }

    /// @notice The contract the operator proposes and signs (EIP-712 `OpenContract`).
    struct Proposal {
        bytes32 contractId;
        address operator;
        address enterprise;
        bytes32[] resources;
        bytes32[] purposes;
        bytes32 scopeHash;
        uint64 validFrom;
        uint64 validUntil;
        uint16 obligations;
        bytes32 termsHash;
        uint256 nonce;
    }

    /// @notice A party's signature of a proposed contract, naming it by its EIP-712 struct hash.
    struct Acceptance {
        bytes32 contractId;
        bytes32 contractHash;
        address signer;
        uint256 nonce;
    }

    /// @notice Suspension, resumption or termination, by the operator or a registrar.
    struct StatusChange {
        bytes32 contractId;
        uint8 action;
        bytes32 reasonHash;
        uint256 nonce;
    }

    /// @notice An enterprise's application for an on-application resource (依申请开放).
    struct Application {
        bytes32 applicationId;
        address enterprise;
        bytes32 resourceId;
        bytes32 purpose;
        bytes32 scopeHash;
        bytes32 qualificationsHash;
        uint64 validFrom;
        uint64 validUntil;
        uint256 nonce;
    }

    /// @notice The provider's or an operator's review of an application.
    struct Review {
        bytes32 applicationId;
        bool approve;
        bytes32 reasonHash;
        uint256 nonce;
    }

    /// @notice The registrar puts a resource on, or takes it off, the negative list (负面清单).
    struct Listing {
        bytes32 resourceId;
        bool listed;
        bytes32 reasonHash;
        uint256 nonce;
    }

    /// @notice What the chain keeps of a contract.
    struct Record {
        uint8 kind;
        Status status;
        uint8 required;
        uint8 signedCount;
        uint16 obligations;
        address operator;
        address enterprise;
        uint64 validFrom;
        uint64 validUntil;
        uint64 proposedAt;
        uint64 effectiveAt;
        uint64 terminatedAt;
        bytes32 contractHash;
        bytes32 scopeHash;
        bytes32 termsHash;
    }

    struct ApplicationRecord {
        address enterprise;
        address provider;
        address operator;
        ApplicationStatus status;
        bool providerApproved;
        uint64 submittedAt;
        uint64 validFrom;
        uint64 validUntil;
        bytes32 resourceId;
        bytes32 purpose;
        bytes32 scopeHash;
        bytes32 applicationHash;
    }

    /// @dev A status from time `at` on.
    struct Change {
        uint64 at;
        Status status;
    }

    struct ListingChange {
        uint64 at;
        bool listed;
    }

    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR");
    bytes32 public constant DEPARTMENT_ROLE = keccak256("DEPARTMENT");
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR");
    bytes32 public constant ENTERPRISE_ROLE = keccak256("ENTERPRISE");

    bytes32 public constant OPEN_CONTRACT_TYPEHASH = keccak256(
        "OpenContract(bytes32 contractId,address operator,address enterprise,bytes32[] resources,bytes32[] purposes,"
        "bytes32 scopeHash,uint64 validFrom,uint64 validUntil,uint16 obligations,bytes32 termsHash,uint256 nonce)"
    );
    bytes32 public constant ACCEPTANCE_TYPEHASH =
        keccak256("Acceptance(bytes32 contractId,bytes32 contractHash,address signer,uint256 nonce)");
    bytes32 public constant STATUS_CHANGE_TYPEHASH =
        keccak256("StatusChange(bytes32 contractId,uint8 action,bytes32 reasonHash,uint256 nonce)");
    bytes32 public constant APPLICATION_TYPEHASH = keccak256(
        "Application(bytes32 applicationId,address enterprise,bytes32 resourceId,bytes32 purpose,bytes32 scopeHash,"
        "bytes32 qualificationsHash,uint64 validFrom,uint64 validUntil,uint256 nonce)"
    );
    bytes32 public constant REVIEW_TYPEHASH =
        keccak256("Review(bytes32 applicationId,bool approve,bytes32 reasonHash,uint256 nonce)");
    bytes32 public constant LISTING_TYPEHASH =
        keccak256("Listing(bytes32 resourceId,bool listed,bytes32 reasonHash,uint256 nonce)");

    IRoles public immutable registry;
    ICatalog public immutable catalog;

    mapping(bytes32 contractId => Record) private _contracts;
    mapping(bytes32 contractId => bytes32[]) private _resources;
    mapping(bytes32 contractId => bytes32[]) private _purposes;
    mapping(bytes32 contractId => address[]) private _signers;
    mapping(bytes32 contractId => mapping(address => bool)) private _isSigner;
    mapping(bytes32 contractId => mapping(address => bool)) private _signed;
    mapping(bytes32 contractId => mapping(bytes32 => bool)) private _hasResource;
    mapping(bytes32 contractId => mapping(bytes32 => bool)) private _hasPurpose;
    mapping(bytes32 contractId => Change[]) private _history;
    mapping(bytes32 applicationId => ApplicationRecord) private _applications;
    mapping(bytes32 resourceId => ListingChange[]) private _listings;

    // ------------------------------------------------------------------------------------------------------
    // Events

    event ContractProposed(
        bytes32 indexed contractId,
        address indexed operator,
        address indexed enterprise,
        bytes32 contractHash,
        bytes32 termsHash,
        uint64 validFrom,
        uint64 validUntil
    );
    /// @notice The proposal's resources, purposes (keccak256 of each purpose code), scope hash and obligations.
    event ContractTerms(
        bytes32 indexed contractId, bytes32[] resources, bytes32[] purposes, bytes32 scopeHash, uint16 obligations
    );
    event ContractSigned(bytes32 indexed contractId, address indexed signer, uint8 count, uint8 required);
    event ContractEffective(bytes32 indexed contractId, uint8 kind, uint64 at);
    event ContractStatusChanged(bytes32 indexed contractId, address indexed by, Status status, bytes32 reasonHash);
    event ApplicationSubmitted(
        bytes32 indexed applicationId,
        bytes32 indexed resourceId,
        address indexed enterprise,
        bytes32 applicationHash,
        bytes32 purpose,
        bytes32 scopeHash,
        bytes32 qualificationsHash,
        uint64 validFrom,
        uint64 validUntil
    );
    event ApplicationReviewed(
        bytes32 indexed applicationId, address indexed reviewer, bool approve, bytes32 reasonHash, ApplicationStatus status
    );
    event NegativeListChanged(bytes32 indexed resourceId, address indexed by, bool listed, bytes32 reasonHash);

    // ------------------------------------------------------------------------------------------------------
    // Errors

    error ZeroAddress();
    error InvalidSignature();
    error NotOperator(address account);
    error NotEnterprise(address account);
    error NotDepartment(address account);
    error NotRegistrar(address account);
    error ContractExists(bytes32 contractId);
    error UnknownContract(bytes32 contractId);
    error InvalidWindow(uint64 validFrom, uint64 validUntil);
    error BadItems();
    error UnknownResource(bytes32 resourceId);
    error DuplicateResource(bytes32 resourceId);
    error NotOpenable(bytes32 resourceId, uint8 openType);
    error NegativeListed(bytes32 resourceId);
    error NotProposed(bytes32 contractId);
    error ContractHashMismatch(bytes32 expected, bytes32 given);
    error NotAParty(address signer);
    error AlreadySigned(bytes32 contractId, address signer);
    error NotAuthorizedToChange(address signer);
    error InvalidTransition(bytes32 contractId, Status status, uint8 action);
    error ApplicationExists(bytes32 applicationId);
    error NotPendingApplication(bytes32 applicationId);
    error NotReviewer(address signer);
    error AlreadyReviewed(bytes32 applicationId, address reviewer);
    error ListingUnchanged(bytes32 resourceId, bool listed);
    // Why `checkAuthorized` refuses an access.
    error NotContractEnterprise(address accessor, address enterprise);
    error ResourceNotInContract(bytes32 contractId, bytes32 resourceId);
    error PurposeNotInContract(bytes32 contractId, bytes32 purpose);
    error ContractNotEffective(bytes32 contractId, uint64 at);
    error ContractSuspended(bytes32 contractId, uint64 at);
    error ContractTerminated(bytes32 contractId, uint64 terminatedAt);
    error ContractNotYetValid(bytes32 contractId, uint64 validFrom);
    error ContractExpired(bytes32 contractId, uint64 validUntil);

    constructor(address registry_, address catalog_) EIP712("sharetrail", "1") {
        if (registry_ == address(0) || catalog_ == address(0)) revert ZeroAddress();
        registry = IRoles(registry_);
        catalog = ICatalog(catalog_);
    }

    // ------------------------------------------------------------------------------------------------------
    // 1. Contract-mode opening (契约式开放)

    /// @notice The operator proposes (and thereby signs) a contract. Every resource must be a contract-open
    /// (契约式开放) catalog entry not on the negative list; its providers and the enterprise must sign next.
    function propose(Proposal calldata p, bytes calldata sig) external {
        bytes32 structHash = proposalStructHash(p);
        _expectSigner(structHash, sig, p.operator);
        _require(OPERATOR_ROLE, p.operator);
        _useCheckedNonce(p.operator, p.nonce);
        if (p.enterprise == address(0)) revert ZeroAddress();
        _require(ENTERPRISE_ROLE, p.enterprise);
        if (p.validFrom >= p.validUntil) revert InvalidWindow(p.validFrom, p.validUntil);
        uint256 n = p.resources.length;
        if (n == 0 || n > MAX_ITEMS || p.purposes.length == 0 || p.purposes.length > MAX_ITEMS) revert BadItems();
        if (p.obligations > OBLIGATIONS_ALL) revert BadItems();
        bytes32 id = p.contractId;
        if (_contracts[id].status != Status.None || _applications[id].status != ApplicationStatus.None) {
            revert ContractExists(id);
        }
        _isSigner[id][p.enterprise] = true;
        _signers[id].push(p.enterprise);
        for (uint256 i = 0; i < n; ++i) {
            bytes32 rid = p.resources[i];
            if (_hasResource[id][rid]) revert DuplicateResource(rid);
            address provider = _openable(rid, OPEN_CONTRACT);
            _hasResource[id][rid] = true;
            _resources[id].push(rid);
            if (!_isSigner[id][provider]) {
                _isSigner[id][provider] = true;
                _signers[id].push(provider);
            }
        }
        for (uint256 i = 0; i < p.purposes.length; ++i) {
            if (_hasPurpose[id][p.purposes[i]]) revert BadItems();
            _hasPurpose[id][p.purposes[i]] = true;
            _purposes[id].push(p.purposes[i]);
        }
        Record storage rec = _contracts[id];
        rec.kind = KIND_CONTRACT;
        rec.status = Status.Proposed;
        rec.required = uint8(_signers[id].length);
        rec.obligations = p.obligations;
        rec.operator = p.operator;
        rec.enterprise = p.enterprise;
        rec.validFrom = p.validFrom;
        rec.validUntil = p.validUntil;
        rec.proposedAt = uint64(block.timestamp);
        rec.contractHash = structHash;
        rec.scopeHash = p.scopeHash;
        rec.termsHash = p.termsHash;
        emit ContractProposed(id, p.operator, p.enterprise, structHash, p.termsHash, p.validFrom, p.validUntil);
        _emitTerms(p);
    }

    function _emitTerms(Proposal calldata p) private {
        emit ContractTerms(p.contractId, p.resources, p.purposes, p.scopeHash, p.obligations);
    }

    /// @notice The enterprise or a provider signs a proposed contract; the last signature makes it effective.
    function sign(Acceptance calldata a, bytes calldata sig) external {
        _expectSigner(acceptanceStructHash(a), sig, a.signer);
        Record storage rec = _contracts[a.contractId];
        if (rec.status == Status.None) revert UnknownContract(a.contractId);
        if (!_isSigner[a.contractId][a.signer]) revert NotAParty(a.signer);
        _require(a.signer == rec.enterprise ? ENTERPRISE_ROLE : DEPARTMENT_ROLE, a.signer);
        _useCheckedNonce(a.signer, a.nonce);
        if (rec.status != Status.Proposed) revert NotProposed(a.contractId);
        if (a.contractHash != rec.contractHash) revert ContractHashMismatch(rec.contractHash, a.contractHash);
        if (_signed[a.contractId][a.signer]) revert AlreadySigned(a.contractId, a.signer);
        _signed[a.contractId][a.signer] = true;
        uint8 count = rec.signedCount + 1;
        rec.signedCount = count;
        emit ContractSigned(a.contractId, a.signer, count, rec.required);
        if (count == rec.required) {
            // A provider may have retyped a resource, or the registrar listed it, since the proposal.
            bytes32[] storage resources = _resources[a.contractId];
            for (uint256 i = 0; i < resources.length; ++i) {
                _openable(resources[i], OPEN_CONTRACT);
            }
            _makeEffective(a.contractId, rec);
        }
    }

    /// @notice Suspend (1), resume (2) or terminate (3) a contract, signed by its operator or a registrar.
    /// Termination is final; a proposed contract may be terminated (withdrawn) before it takes effect.
    function changeStatus(StatusChange calldata c, bytes calldata sig) external {
        address signer = _recover(statusChangeStructHash(c), sig);
        Record storage rec = _contracts[c.contractId];
        if (rec.status == Status.None) revert UnknownContract(c.contractId);
        if (signer != rec.operator && !registry.hasRole(REGISTRAR_ROLE, signer)) revert NotAuthorizedToChange(signer);
        if (signer == rec.operator) _require(OPERATOR_ROLE, signer);
        _useCheckedNonce(signer, c.nonce);
        Status next;
        if (c.action == ACTION_SUSPEND && rec.status == Status.Effective) {
            next = Status.Suspended;
        } else if (c.action == ACTION_RESUME && rec.status == Status.Suspended) {
            next = Status.Effective;
        } else if (c.action == ACTION_TERMINATE && rec.status != Status.Terminated) {
            next = Status.Terminated;
            rec.terminatedAt = uint64(block.timestamp);
        } else {
            revert InvalidTransition(c.contractId, rec.status, c.action);
        }
        rec.status = next;
        _history[c.contractId].push(Change(uint64(block.timestamp), next));
        emit ContractStatusChanged(c.contractId, signer, next, c.reasonHash);
    }

    // ------------------------------------------------------------------------------------------------------
    // 2. On-application opening (依申请开放)

    /// @notice An enterprise applies for an on-application resource with its qualifications (hashed).
    function submitApplication(Application calldata a, bytes calldata sig) external {
        bytes32 structHash = applicationStructHash(a);
        _expectSigner(structHash, sig, a.enterprise);
        _require(ENTERPRISE_ROLE, a.enterprise);
        _useCheckedNonce(a.enterprise, a.nonce);
        if (a.validFrom >= a.validUntil) revert InvalidWindow(a.validFrom, a.validUntil);
        bytes32 id = a.applicationId;
        if (_applications[id].status != ApplicationStatus.None || _contracts[id].status != Status.None) {
            revert ApplicationExists(id);
        }
        address provider = _openable(a.resourceId, OPEN_ON_APPLICATION);
        ApplicationRecord storage app = _applications[id];
        app.enterprise = a.enterprise;
        app.provider = provider;
        app.status = ApplicationStatus.Pending;
        app.submittedAt = uint64(block.timestamp);
        app.validFrom = a.validFrom;
        app.validUntil = a.validUntil;
        app.resourceId = a.resourceId;
        app.purpose = a.purpose;
        app.scopeHash = a.scopeHash;
        app.applicationHash = structHash;
        emit ApplicationSubmitted(
            id,
            a.resourceId,
            a.enterprise,
            structHash,
            a.purpose,
            a.scopeHash,
            a.qualificationsHash,
            a.validFrom,
            a.validUntil
        );
    }

    /// @notice The provider or an operator reviews a pending application. A rejection is final; when both
    /// have approved, an effective contract (kind KIND_APPLICATION, id = the application's) opens the resource.
    function review(Review calldata r, bytes calldata sig) external {
        address signer = _recover(reviewStructHash(r), sig);
        ApplicationRecord storage app = _applications[r.applicationId];
        if (app.status == ApplicationStatus.None) revert NotPendingApplication(r.applicationId);
        bool byProvider = signer == app.provider;
        if (byProvider) {
            _require(DEPARTMENT_ROLE, signer);
        } else if (!registry.hasRole(OPERATOR_ROLE, signer)) {
            revert NotReviewer(signer);
        }
        _useCheckedNonce(signer, r.nonce);
        if (app.status != ApplicationStatus.Pending) revert NotPendingApplication(r.applicationId);
        if (byProvider ? app.providerApproved : app.operator != address(0)) {
            revert AlreadyReviewed(r.applicationId, signer);
        }
        if (!r.approve) {
            app.status = ApplicationStatus.Rejected;
        } else {
            if (byProvider) app.providerApproved = true;
            else app.operator = signer;
            if (app.providerApproved && app.operator != address(0)) {
                app.status = ApplicationStatus.Approved;
                _openByApplication(r.applicationId, app);
            }
        }
        emit ApplicationReviewed(r.applicationId, signer, r.approve, r.reasonHash, app.status);
    }

    function _openByApplication(bytes32 id, ApplicationRecord storage app) private {
        // The provider may have changed the open type, or the registrar listed the resource, since.
        _openable(app.resourceId, OPEN_ON_APPLICATION);
        Record storage rec = _contracts[id];
        rec.kind = KIND_APPLICATION;
        rec.required = 3;
        rec.signedCount = 3;
        rec.obligations = OBLIGATIONS_APPLICATION;
        rec.operator = app.operator;
        rec.enterprise = app.enterprise;
        rec.validFrom = app.validFrom;
        rec.validUntil = app.validUntil;
        rec.proposedAt = app.submittedAt;
        rec.contractHash = app.applicationHash;
        rec.scopeHash = app.scopeHash;
        rec.termsHash = app.applicationHash;
        _resources[id].push(app.resourceId);
        _hasResource[id][app.resourceId] = true;
        _purposes[id].push(app.purpose);
        _hasPurpose[id][app.purpose] = true;
        _signers[id].push(app.enterprise);
        _signers[id].push(app.provider);
        _signers[id].push(app.operator);
        _signed[id][app.enterprise] = true; // the application, and the two approving reviews
        _signed[id][app.provider] = true;
        _signed[id][app.operator] = true;
        _makeEffective(id, rec);
    }

    /// @notice What the chain keeps of an application (status None: unknown).
    function applicationOf(bytes32 applicationId) external view returns (ApplicationRecord memory) {
        return _applications[applicationId];
    }

    // ------------------------------------------------------------------------------------------------------
    // 3. The negative list (负面清单)

    /// @notice A registrar lists a resource (never opened; effective contracts stop covering it) or delists it.
    function setListing(Listing calldata l, bytes calldata sig) external {
        address signer = _recover(listingStructHash(l), sig);
        _require(REGISTRAR_ROLE, signer);
        _useCheckedNonce(signer, l.nonce);
        if (isNegativeListed(l.resourceId) == l.listed) revert ListingUnchanged(l.resourceId, l.listed);
        _listings[l.resourceId].push(ListingChange(uint64(block.timestamp), l.listed));
        emit NegativeListChanged(l.resourceId, signer, l.listed, l.reasonHash);
    }

    function isNegativeListed(bytes32 resourceId) public view returns (bool) {
        return listedAt(resourceId, type(uint64).max);
    }

    /// @notice Was the resource on the negative list at time `at`?
    function listedAt(bytes32 resourceId, uint64 at) public view returns (bool) {
        ListingChange[] storage changes = _listings[resourceId];
        for (uint256 i = changes.length; i > 0; --i) {
            if (changes[i - 1].at <= at) return changes[i - 1].listed;
        }
        return false;
    }

    // ------------------------------------------------------------------------------------------------------
    // 4. Reading and checking

    function contractOf(bytes32 contractId) external view returns (Record memory) {
        return _contracts[contractId];
    }

    function resourcesOf(bytes32 contractId) external view returns (bytes32[] memory) {
        return _resources[contractId];
    }

    function purposesOf(bytes32 contractId) external view returns (bytes32[] memory) {
        return _purposes[contractId];
    }

    /// @notice Who must sign (contract mode: the enterprise and each provider; the operator signed the proposal).
    function signersOf(bytes32 contractId) external view returns (address[] memory) {
        return _signers[contractId];
    }

    function hasSigned(bytes32 contractId, address account) external view returns (bool) {
        return _signed[contractId][account];
    }

    /// @notice The contract's status at time `at` (Proposed before it took effect).
    function statusAt(bytes32 contractId, uint64 at) public view returns (Status) {
        if (_contracts[contractId].status == Status.None) return Status.None;
        Change[] storage changes = _history[contractId];
        for (uint256 i = changes.length; i > 0; --i) {
            if (changes[i - 1].at <= at) return changes[i - 1].status;
        }
        return Status.Proposed;
    }

    /// @notice Returns if `accessor` could use contract `contractId` for `resourceId` with purpose `purpose`
    /// (keccak256 of the purpose code) at time `at`; else reverts naming why. Checked in this order: the
    /// contract exists, the accessor is its enterprise, the resource and the purpose are in it, it was
    /// effective at `at` (not pending, suspended or terminated), `at` lies in its window, and the resource
    /// was not on the negative list at `at`.
    function checkAuthorized(bytes32 contractId, address accessor, bytes32 resourceId, bytes32 purpose, uint64 at)
        external
        view
    {
        Record storage rec = _contracts[contractId];
        if (rec.status == Status.None) revert UnknownContract(contractId);
        if (accessor != rec.enterprise) revert NotContractEnterprise(accessor, rec.enterprise);
        if (!_hasResource[contractId][resourceId]) revert ResourceNotInContract(contractId, resourceId);
        if (!_hasPurpose[contractId][purpose]) revert PurposeNotInContract(contractId, purpose);
        Status s = statusAt(contractId, at);
        if (s == Status.Terminated) revert ContractTerminated(contractId, rec.terminatedAt);
        if (s == Status.Suspended) revert ContractSuspended(contractId, at);
        if (s != Status.Effective) revert ContractNotEffective(contractId, at);
        if (at < rec.validFrom) revert ContractNotYetValid(contractId, rec.validFrom);
        if (at >= rec.validUntil) revert ContractExpired(contractId, rec.validUntil);
        if (listedAt(resourceId, at)) revert NegativeListed(resourceId);
    }

    // ------------------------------------------------------------------------------------------------------
    // EIP-712

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function proposalStructHash(Proposal calldata p) public pure returns (bytes32) {
        // Two static encodings concatenated equal one abi.encode of all twelve words (no stack-too-deep).
        bytes memory head = abi.encode(
            OPEN_CONTRACT_TYPEHASH,
            p.contractId,
            p.operator,
            p.enterprise,
            keccak256(abi.encodePacked(p.resources)),
            keccak256(abi.encodePacked(p.purposes))
        );
        bytes memory tail = abi.encode(p.scopeHash, p.validFrom, p.validUntil, p.obligations, p.termsHash, p.nonce);
        return keccak256(bytes.concat(head, tail));
    }

    function acceptanceStructHash(Acceptance calldata a) public pure returns (bytes32) {
        return keccak256(abi.encode(ACCEPTANCE_TYPEHASH, a));
    }

    function statusChangeStructHash(StatusChange calldata c) public pure returns (bytes32) {
        return keccak256(abi.encode(STATUS_CHANGE_TYPEHASH, c));
    }

    function applicationStructHash(Application calldata a) public pure returns (bytes32) {
        return keccak256(abi.encode(APPLICATION_TYPEHASH, a));
    }

    function reviewStructHash(Review calldata r) public pure returns (bytes32) {
        return keccak256(abi.encode(REVIEW_TYPEHASH, r));
    }

    function listingStructHash(Listing calldata l) public pure returns (bytes32) {
        return keccak256(abi.encode(LISTING_TYPEHASH, l));
    }

    // ------------------------------------------------------------------------------------------------------
    // Internals

    function _makeEffective(bytes32 id, Record storage rec) private {
        rec.status = Status.Effective;
        rec.effectiveAt = uint64(block.timestamp);
        _history[id].push(Change(uint64(block.timestamp), Status.Effective));
        emit ContractEffective(id, rec.kind, uint64(block.timestamp));
    }

    /// @dev The provider of `resourceId` if it may be opened by `openType` now; reverts otherwise.
    function _openable(bytes32 resourceId, uint8 openType) private view returns (address) {
        ICatalog.Resource memory res = catalog.resourceOf(resourceId);
        if (res.version == 0) revert UnknownResource(resourceId);
        if (res.openType != openType) revert NotOpenable(resourceId, res.openType);
        if (isNegativeListed(resourceId)) revert NegativeListed(resourceId);
        return res.provider;
    }

    function _recover(bytes32 structHash, bytes calldata sig) private view returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecoverCalldata(_hashTypedDataV4(structHash), sig);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
    }

    function _expectSigner(bytes32 structHash, bytes calldata sig, address expected) private view {
        if (_recover(structHash, sig) != expected) revert InvalidSignature();
    }

    function _require(bytes32 role, address account) private view {
        if (registry.hasRole(role, account)) return;
        if (role == OPERATOR_ROLE) revert NotOperator(account);
        if (role == ENTERPRISE_ROLE) revert NotEnterprise(account);
        if (role == DEPARTMENT_ROLE) revert NotDepartment(account);
        revert NotRegistrar(account);
    }
}
