"""The data gateway: mediated access to a resource's rows under a grant (scope, masking, hashing)."""
