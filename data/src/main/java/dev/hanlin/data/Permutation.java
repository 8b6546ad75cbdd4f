package dev.hanlin.data;

/**
 * A pseudo-random permutation of {@code [0, n)} that needs no memory: a balanced Feistel network
 * over the smallest even number of bits that covers n, with cycle walking to stay inside the
 * domain. {@code apply(i)} is random access, so a cursor is just a position, for any n.
 */
public final class Permutation {
  private static final int ROUNDS = 6;
  private final long n;
  private final int halfBits;
  private final long halfMask;
  private final long[] keys = new long[ROUNDS];

  public Permutation(long n, long key) {
    if (n < 1) throw new IllegalArgumentException("empty permutation");
    this.n = n;
    int bits = Math.max(2, 64 - Long.numberOfLeadingZeros(n - 1));
    if (bits % 2 == 1) bits++;
    this.halfBits = bits / 2;
    this.halfMask = (1L << halfBits) - 1;
    long k = key;
    for (int r = 0; r < ROUNDS; r++) {
      k = mix(k + 0x9E3779B97F4A7C15L);
      keys[r] = k;
    }
  }

  public long size() {
    return n;
  }

  /** The image of {@code i}, a bijection of {@code [0, n)}. */
  public long apply(long i) {
    if (i < 0 || i >= n) throw new IndexOutOfBoundsException(i + " of " + n);
    long x = i;
    do {
      x = encrypt(x);
    } while (x >= n);
    return x;
  }

  private long encrypt(long x) {
    long l = x >>> halfBits;
    long r = x & halfMask;
    for (int round = 0; round < ROUNDS; round++) {
      long f = mix(r ^ keys[round]) & halfMask;
      long t = r;
      r = l ^ f;
      l = t;
    }
    return (l << halfBits) | r;
  }

  /** SplitMix64's finalizer: a bijective mix of 64 bits; seeds every shuffle and the split. */
  public static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
