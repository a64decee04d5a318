// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Anchor: append-only checkpoints of the sharetrail Merkle log
/// @notice Records (tree size, root) checkpoints of an RFC 9162 §2.1 Merkle log. A new checkpoint is
/// accepted only with a valid RFC 9162 §2.1.4 consistency proof from the latest one, so the anchored
/// log can only grow: not even the operator can rewrite, truncate or fork it. The first checkpoint
/// extends the empty tree and needs no proof.
/// @dev Hashing is SHA-256 (the 0x02 precompile) with RFC 9162 domain separation: interior node =
/// SHA-256(0x01 || left || right). Leaf hashes never reach the contract.
contract Anchor is AccessControl {
    /// @notice The only role that may anchor.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR");

    struct Checkpoint {
        bytes32 root;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// @dev Checkpoint by tree size; root == 0 means never anchored.
    mapping(uint64 treeSize => Checkpoint) private _checkpoints;
    /// @dev Every anchored tree size, in anchoring (= increasing) order.
    uint64[] private _sizes;

    /// @dev Leaf hashes recorded one transaction each (high-level resources), by log index.
    mapping(uint64 index => bytes32 leafHash) private _leaves;

    /// @notice A checkpoint was recorded. `timestamp` is the block timestamp.
    event Anchored(uint64 treeSize, bytes32 root, uint64 timestamp);
    /// @notice One access recorded in its own transaction (on top of the batched anchoring).
    event LeafRecorded(uint64 indexed index, bytes32 leafHash, uint64 timestamp);

    /// @notice `proposed` is smaller than the latest anchored size: the log cannot shrink.
    error SizeNotIncreasing(uint64 latest, uint64 proposed);
    /// @notice `size` is already anchored with a different root: someone forked the log.
    error RootConflict(uint64 size, bytes32 anchored, bytes32 proposed);
    /// @notice `size` is already anchored with this very root (an idempotent retry; nothing to do).
    error AlreadyAnchored(uint64 size);
    /// @notice The proof does not show that the new tree extends the latest anchored one.
    error InvalidConsistencyProof();
    /// @notice A checkpoint of the empty tree carries no information and is refused.
    error EmptyTree();
    /// @notice 0x0 is what `rootAt` returns for "never anchored", so it cannot be a root.
    error ZeroRoot();
    /// @notice The constructor was given the zero address for a role holder.
    error ZeroAddress();
    /// @notice A leaf hash is already recorded for this log index (leaves are immutable).
    error LeafAlreadyRecorded(uint64 index, bytes32 recorded);
    /// @notice 0x0 is what `leafAt` returns for "never recorded", so it cannot be a leaf hash.
    error ZeroLeaf();

    constructor(address admin, address operator) {
        if (admin == address(0) || operator == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /// @notice The latest checkpoint; (0, 0x0) before the first anchor.
    function latest() public view returns (uint64 treeSize, bytes32 root) {
        uint256 n = _sizes.length;
        if (n == 0) return (0, bytes32(0));
        treeSize = _sizes[n - 1];
        root = _checkpoints[treeSize].root;
    }

    /// @notice The root anchored for exactly `treeSize` leaves, or 0x0 if that size was never anchored.
    function rootAt(uint64 treeSize) external view returns (bytes32 root) {
        return _checkpoints[treeSize].root;
    }

    /// @notice When the checkpoint of `treeSize` was anchored; (0, 0) if it never was.
    function anchoredAt(uint64 treeSize) external view returns (uint64 timestamp, uint64 blockNumber) {
        Checkpoint storage c = _checkpoints[treeSize];
        return (c.timestamp, c.blockNumber);
    }

    /// @notice Number of checkpoints anchored so far.
    function count() external view returns (uint256) {
        return _sizes.length;
    }

    /// @notice Tree size of the `index`-th checkpoint (0-based, in anchoring order), to enumerate them.
    function sizeAt(uint256 index) external view returns (uint64) {
        return _sizes[index];
    }

    /// @notice Anchor the tree of `newSize` leaves with root `newRoot`.
    /// @param consistencyProof RFC 9162 §2.1.4.1 PROOF(latest size, D[newSize]); empty for the first anchor.
    /// @dev Checks, in order: operator role; newSize > 0; newRoot != 0; newSize versus the latest size
    /// (smaller: SizeNotIncreasing; equal: AlreadyAnchored or RootConflict); then the proof.
    function anchor(uint64 newSize, bytes32 newRoot, bytes32[] calldata consistencyProof)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (newSize == 0) revert EmptyTree();
        if (newRoot == bytes32(0)) revert ZeroRoot();
        (uint64 oldSize, bytes32 oldRoot) = latest();
        if (newSize < oldSize) revert SizeNotIncreasing(oldSize, newSize);
        if (newSize == oldSize) {
            if (newRoot == oldRoot) revert AlreadyAnchored(newSize);
            revert RootConflict(newSize, oldRoot, newRoot);
        }
        if (oldSize == 0) {
            // Every tree extends the empty tree; RFC 9162 defines no proof from size 0.
            if (consistencyProof.length != 0) revert InvalidConsistencyProof();
        } else if (!verifyConsistency(oldSize, newSize, oldRoot, newRoot, consistencyProof)) {
            revert InvalidConsistencyProof();
        }

        uint64 timestamp = uint64(block.timestamp);
        _checkpoints[newSize] = Checkpoint({root: newRoot, timestamp: timestamp, blockNumber: uint64(block.number)});
        _sizes.push(newSize);
        emit Anchored(newSize, newRoot, timestamp);
    }

    /// @notice Record one log leaf in its own transaction, for resources whose level requires it
    /// (e.g. level 4): the access is on chain within one block, before the next batch anchor.
    function recordLeaf(uint64 index, bytes32 leafHash) external onlyRole(OPERATOR_ROLE) {
        if (leafHash == bytes32(0)) revert ZeroLeaf();
        bytes32 recorded = _leaves[index];
        if (recorded != bytes32(0)) revert LeafAlreadyRecorded(index, recorded);
        _leaves[index] = leafHash;
        emit LeafRecorded(index, leafHash, uint64(block.timestamp));
    }

    /// @notice The leaf hash recorded for `index` by `recordLeaf`, or 0x0.
    function leafAt(uint64 index) external view returns (bytes32) {
        return _leaves[index];
    }

    /// @notice RFC 9162 §2.1.4.2: does `proof` show that the tree (size2, root2) extends (size1, root1)?
    /// @dev Requires 0 < size1 < size2 (returns false otherwise). Follows the RFC's steps literally; the
    /// final `sn == 0` test rejects proofs that are too short, the in-loop one proofs that are too long.
    /// Proof hashes are read from calldata, one at a time; nothing is copied.
    function verifyConsistency(
        uint64 size1,
        uint64 size2,
        bytes32 root1,
        bytes32 root2,
        bytes32[] calldata proof
    ) public pure returns (bool) {
        if (size1 == 0 || size1 >= size2 || proof.length == 0) return false;
        uint256 fn = size1 - 1;
        uint256 sn = size2 - 1;
        bytes32 fr;
        bytes32 sr;
        uint256 i;
        // Step 2: if size1 is a power of two, the path starts with root1 (it is a node of tree 2).
        if (size1 & (size1 - 1) == 0) {
            fr = root1;
        } else {
            fr = proof[0];
            i = 1;
        }
        sr = fr;
        // Step 4.
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        // Step 6.
        uint256 n = proof.length;
        for (; i < n; ++i) {
            if (sn == 0) return false;
            bytes32 c = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        // Step 7.
        return sn == 0 && fr == root1 && sr == root2;
    }

    /// @dev RFC 9162 §2.1.1 interior node hash.
    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }
}
