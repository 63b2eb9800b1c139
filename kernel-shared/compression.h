/* SPDX-License-Identifier: GPL-2.0 */
/* btrfs compressed extents: zlib, lzo (btrfs segment format) and zstd. */
#ifndef EXTCRYPT_COMPRESSION_H
#define EXTCRYPT_COMPRESSION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decompress in[0..in_len) of btrfs compression type (1 zlib, 2 lzo,
 * 3 zstd) into out, which holds out_len bytes (the extent's ram_bytes).
 * sectorsize is needed for lzo's segment layout.  Returns the number of
 * bytes produced (at most out_len), -EINVAL for an unknown type, or
 * -EUCLEAN for a corrupt stream.
 */
long btrfs_decompress(int type, const uint8_t *in, size_t in_len, uint8_t *out,
		      size_t out_len, uint32_t sectorsize);

#endif
