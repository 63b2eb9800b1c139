/* Transitional, removed by the next commit: the check engine moved to check/. */
#include "check/check.h"
