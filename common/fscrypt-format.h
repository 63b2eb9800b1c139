/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fscrypt on-disk format shared by the crypto code and the btrfs image
 * engine (Documentation/format.rst sections 3.1 and 5.2): sizes, mode numbers, policy flags
 * and the two context layouts that btrfs stores as items 41 and 42.  Only
 * constants and packed structures, no code: crypto/ derives keys from them,
 * kernel-shared/ reads, writes and moves the items without any cipher.
 */
#ifndef EXTCRYPT_FSCRYPT_FORMAT_H
#define EXTCRYPT_FSCRYPT_FORMAT_H

#include <stdint.h>

#define FSCRYPT_MIN_KEY_SIZE		16
#define FSCRYPT_MAX_KEY_SIZE		64
#define FSCRYPT_KEY_IDENTIFIER_SIZE	16
#define FSCRYPT_NONCE_SIZE		16
#define FSCRYPT_MAX_MODE_KEY_SIZE	64

#define FSCRYPT_CONTEXT_V2		2
#define FSCRYPT_CONTEXT_V2_SIZE		40
#define FSCRYPT_POLICY_V2_SIZE		24
#define FSCRYPT_EXTENT_CONTEXT_V1	1
#define FSCRYPT_EXTENT_CONTEXT_SIZE	34
#define FSCRYPT_EXTENT_CONTEXT_MAX_SIZE	40

/* Encryption modes (include/uapi/linux/fscrypt.h). */
enum {
	FSCRYPT_MODE_AES_256_XTS = 1,
	FSCRYPT_MODE_AES_256_CTS = 4,
	FSCRYPT_MODE_AES_128_CBC = 5,
	FSCRYPT_MODE_AES_128_CTS = 6,
	FSCRYPT_MODE_SM4_XTS = 7,
	FSCRYPT_MODE_SM4_CTS = 8,
	FSCRYPT_MODE_ADIANTUM = 9,
	FSCRYPT_MODE_AES_256_HCTR2 = 10,
};

/* Policy flags. */
#define FSCRYPT_POLICY_FLAGS_PAD_4		0x00
#define FSCRYPT_POLICY_FLAGS_PAD_8		0x01
#define FSCRYPT_POLICY_FLAGS_PAD_16		0x02
#define FSCRYPT_POLICY_FLAGS_PAD_32		0x03
#define FSCRYPT_POLICY_FLAGS_PAD_MASK		0x03
#define FSCRYPT_POLICY_FLAG_DIRECT_KEY		0x04
#define FSCRYPT_POLICY_FLAG_IV_INO_LBLK_64	0x08
#define FSCRYPT_POLICY_FLAG_IV_INO_LBLK_32	0x10

/* struct fscrypt_context_v2 (Documentation/format.rst 3.1), 40 bytes on disk. */
struct fscrypt_context_v2 {
	uint8_t version;
	uint8_t contents_mode;
	uint8_t filenames_mode;
	uint8_t flags;
	uint8_t log2_data_unit_size;
	uint8_t reserved[3];
	uint8_t master_key_identifier[FSCRYPT_KEY_IDENTIFIER_SIZE];
	uint8_t nonce[FSCRYPT_NONCE_SIZE];
} __attribute__((packed));

/* struct fscrypt_extent_context (Documentation/format.rst 5.2), 34 bytes on disk. */
struct fscrypt_extent_context {
	uint8_t version;
	uint8_t encryption_mode;
	uint8_t master_key_identifier[FSCRYPT_KEY_IDENTIFIER_SIZE];
	uint8_t nonce[FSCRYPT_NONCE_SIZE];
} __attribute__((packed));

#endif
