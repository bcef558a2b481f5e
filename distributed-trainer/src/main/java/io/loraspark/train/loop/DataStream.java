package io.loraspark.train.loop;

import io.loraspark.train.model.TokenRow;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * An adapter's own endless stream of training rows: a fresh seeded permutation per epoch. The
 * position (epoch, cursor) is all the state a checkpoint needs to resume the same order.
 */
final class DataStream {
  private final List<TokenRow> rows;
  private final long seed;
  private int epoch;
  private int cursor;
  private int[] order;

  DataStream(List<TokenRow> rows, long seed) {
    io.loraspark.train.model.ModelConfig.require(!rows.isEmpty(), "no training rows");
    this.rows = rows;
    this.seed = seed;
    this.order = permutation(0);
  }

  /** The next {@code n} rows, wrapping into a new epoch as needed. */
  List<TokenRow> next(int n) {
    List<TokenRow> out = new ArrayList<>(n);
    while (out.size() < n) {
      if (cursor == order.length) {
        epoch++;
        cursor = 0;
        order = permutation(epoch);
      }
      out.add(rows.get(order[cursor++]));
    }
    return out;
  }

  int epoch() {
    return epoch;
  }

  int cursor() {
    return cursor;
  }

  /** Moves to a saved position. */
  void seek(int epoch, int cursor) {
    this.epoch = epoch;
    this.cursor = cursor;
    this.order = permutation(epoch);
  }

  private int[] permutation(int e) {
    int[] p = new int[rows.size()];
    for (int i = 0; i < p.length; i++) {
      p[i] = i;
    }
    SplittableRandom rnd = new SplittableRandom(seed * 31 + e);
    for (int i = p.length - 1; i > 0; i--) {
      int j = rnd.nextInt(i + 1);
      int t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
