// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of kernel-shared/ (key compare, item layout, ...).  Placeholder
 * with no tests yet: the lead fills it in, registering tests with
 * UNIT_TEST() from tests/unit/unit.h.
 */
#include "tests/unit/unit.h"
