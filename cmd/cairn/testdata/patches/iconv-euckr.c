/*
 * CVE-2025-26519: musl's EUC-KR decoder before the fix takes a lead byte
 * past the end of its table (here 0xC8 followed by 'A') as the start of an
 * extended Hangul syllable and decodes it to a value that is no Unicode
 * scalar value; its UTF-8 encoder then returns (size_t)-1 and iconv moves
 * the output pointer one byte back, before the buffer (seen: "moved the
 * output pointer by -1"). A fixed musl refuses the pair with EILSEQ and
 * leaves the input where it was.
 * Exit status 0: fixed; 1: the vulnerable decoding; 2: setup failed.
 */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	char in[] = "\xc8\x41";
	char out[16];
	char *ip = in, *op = out;
	size_t il = 2, ol = sizeof out;
	iconv_t cd = iconv_open("UTF-8", "EUC-KR");
	if (cd == (iconv_t)-1) {
		perror("iconv_open UTF-8 from EUC-KR");
		return 2;
	}
	size_t r = iconv(cd, &ip, &il, &op, &ol);
	int e = errno;
	iconv_close(cd);
	if (r == (size_t)-1 && e == EILSEQ && ip == in && il == 2) {
		printf("ok: EUC-KR C8 41 refused with EILSEQ\n");
		return 0;
	}
	printf("VULNERABLE: EUC-KR C8 41 gave r=%ld errno=%d (%s), consumed %ld bytes, moved the output pointer by %ld:",
	       (long)r, r == (size_t)-1 ? e : 0, r == (size_t)-1 ? strerror(e) : "none",
	       (long)(ip - in), (long)(op - out));
	for (char *p = out; p < op; p++)
		printf(" %02x", (unsigned char)*p);
	printf("\n");
	return 1;
}
