package pitr

// OriginalsForTest is originals, for the external tests.
var OriginalsForTest = originals
