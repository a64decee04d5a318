// Minimal Hardhat config: sharetrail uses Hardhat only as a local EVM JSON-RPC node for the
// external-chain tests (`npx hardhat node`); contracts are compiled by ledger/chain/compile.py.
module.exports = {
  solidity: '0.8.28',
  networks: {
    hardhat: { chainId: 31337, hardfork: 'cancun', mining: { auto: true } },
  },
};
