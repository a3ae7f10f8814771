package hugepage

// MinSize is the smallest buffer Advise considers: one huge page. A buffer
// holds a whole aligned one only from a little above that size on, and
// Advise makes no system call when it holds none.
const MinSize = Size
