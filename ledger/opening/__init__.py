"""Opening government data to enterprises (数据开放): open contracts, applications, the negative list,
usage declarations, and the gateway's and the proof bundle's view of them."""
