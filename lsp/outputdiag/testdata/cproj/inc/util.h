#ifndef UTIL_H
#define UTIL_H

static inline int twice(int x) { return x * undefined_factor; }

#endif
