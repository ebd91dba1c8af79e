#include <stdio.h>
#include "inc/util.h"

static int unused_helper(void) { return 0; }

int main(void) {
	int n = 1;
	const char *s = "é😀"; n = s;
		printf("%d\n", twice(n), missing);
	return 0;
}
