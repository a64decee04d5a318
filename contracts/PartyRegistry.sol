// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title PartyRegistry — who may act in sharetrail, by kind, on chain.
/// @notice Every party (registrar, department, operator, enterprise, regulator) is registered here by
/// the registrar (市大数据委) with an OpenZeppelin AccessControl role for its kind. The API refuses a
/// token whose party is suspended here, and later contracts (share workflow, open contracts, anchor)
/// read these roles, so a suspension on chain takes effect everywhere at once.
contract PartyRegistry is AccessControl {
    enum Kind {
        None,
        Registrar,
        Department,
        Operator,
        Enterprise,
        Regulator
    }

    struct Party {
        Kind kind;
        bool suspended;
        uint64 registeredAt;
        bytes32 partyId;
        bytes32 usccHash;
    }

    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR");
    bytes32 public constant DEPARTMENT_ROLE = keccak256("DEPARTMENT");
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR");
    bytes32 public constant ENTERPRISE_ROLE = keccak256("ENTERPRISE");
    bytes32 public constant REGULATOR_ROLE = keccak256("REGULATOR");

    mapping(address account => Party) private _parties;
    mapping(bytes32 usccHash => address account) private _byUscc;
    uint256 public partyCount;

    event PartyRegistered(address indexed account, Kind kind, bytes32 indexed partyId, bytes32 usccHash);
    event PartySuspended(address indexed account, bytes32 reasonHash);
    event PartyReinstated(address indexed account);

    error ZeroAddress();
    error InvalidKind();
    error AlreadyRegistered(address account);
    error UsccTaken(bytes32 usccHash, address holder);
    error NotRegistered(address account);
    error AlreadySuspended(address account);
    error NotSuspended(address account);
    error CannotSuspendSelf();

    /// @param admin may grant further registrars (DEFAULT_ADMIN_ROLE); the platform's deployer key.
    /// @param registrar the first registrar party, registered with REGISTRAR_ROLE.
    constructor(address admin, address registrar, bytes32 registrarId, bytes32 registrarUsccHash) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _register(registrar, Kind.Registrar, registrarId, registrarUsccHash);
    }

    function roleOf(Kind kind) public pure returns (bytes32) {
        if (kind == Kind.Registrar) return REGISTRAR_ROLE;
        if (kind == Kind.Department) return DEPARTMENT_ROLE;
        if (kind == Kind.Operator) return OPERATOR_ROLE;
        if (kind == Kind.Enterprise) return ENTERPRISE_ROLE;
        if (kind == Kind.Regulator) return REGULATOR_ROLE;
        revert InvalidKind();
    }

    /// @notice Register a party. Only a registrar may; one address and one credit code each.
    function register(address account, Kind kind, bytes32 partyId, bytes32 usccHash)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        _register(account, kind, partyId, usccHash);
    }

    function _register(address account, Kind kind, bytes32 partyId, bytes32 usccHash) private {
        if (account == address(0)) revert ZeroAddress();
        if (kind == Kind.None) revert InvalidKind();
        if (_parties[account].kind != Kind.None) revert AlreadyRegistered(account);
        address holder = _byUscc[usccHash];
        if (holder != address(0)) revert UsccTaken(usccHash, holder);
        _parties[account] = Party({
            kind: kind,
            suspended: false,
            registeredAt: uint64(block.timestamp),
            partyId: partyId,
            usccHash: usccHash
        });
        _byUscc[usccHash] = account;
        unchecked {
            partyCount += 1;
        }
        _grantRole(roleOf(kind), account);
        emit PartyRegistered(account, kind, partyId, usccHash);
    }

    /// @notice Suspend a party: its role is revoked and the API refuses its token.
    function suspend(address account, bytes32 reasonHash) external onlyRole(REGISTRAR_ROLE) {
        Party storage p = _parties[account];
        if (p.kind == Kind.None) revert NotRegistered(account);
        if (p.suspended) revert AlreadySuspended(account);
        if (account == msg.sender) revert CannotSuspendSelf();
        p.suspended = true;
        _revokeRole(roleOf(p.kind), account);
        emit PartySuspended(account, reasonHash);
    }

    function reinstate(address account) external onlyRole(REGISTRAR_ROLE) {
        Party storage p = _parties[account];
        if (p.kind == Kind.None) revert NotRegistered(account);
        if (!p.suspended) revert NotSuspended(account);
        p.suspended = false;
        _grantRole(roleOf(p.kind), account);
        emit PartyReinstated(account);
    }

    function partyOf(address account) external view returns (Party memory) {
        return _parties[account];
    }

    function isActive(address account) external view returns (bool) {
        Party storage p = _parties[account];
        return p.kind != Kind.None && !p.suspended;
    }

    function isActiveAs(address account, Kind kind) external view returns (bool) {
        Party storage p = _parties[account];
        return p.kind == kind && !p.suspended;
    }
}
