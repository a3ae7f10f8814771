package local

// maxOpenHandles is 0 on Windows: a file that is open there cannot be
// deleted, and prune must be able to delete packs at any time.
const maxOpenHandles = 0
