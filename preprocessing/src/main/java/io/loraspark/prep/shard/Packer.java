package io.loraspark.prep.shard;

import io.loraspark.prep.schema.Conversation;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * Builds shard rows from examples arriving in shard order: one row per example, or (packing) greedy
 * first-fit-in-order packing of consecutive examples of the same split into rows of at most {@code
 * capacity} tokens. Packed rows number their examples in {@code segment_ids} (1, 2, ...), the first
 * label of every segment is {@link ShardSchema#IGNORE_INDEX} so no label depends on the previous
 * example, and the row id is the SHA-256 of the member ids joined by ','.
 *
 * <p>Usage: {@link #add} for each example in order (returns rows completed by it), then {@link
 * #finish}. Not thread-safe.
 */
public final class Packer {

  /**
   * One tokenized example entering the packer.
   *
   * @param exampleId the example id
   * @param split train or eval
   * @param inputIds token ids
   * @param labels labels
   * @param source file:row
   */
  public record Member(
      String exampleId, String split, int[] inputIds, int[] labels, String source) {}

  private final int capacity;
  private final boolean pack;
  private final List<Member> open = new ArrayList<>();
  private int openTokens;

  /**
   * @param capacity max tokens per row (max_seq_len)
   * @param pack whether to pack several examples per row
   */
  public Packer(int capacity, boolean pack) {
    this.capacity = capacity;
    this.pack = pack;
  }

  /** Adds the next example; returns the rows it completed (possibly none). */
  public List<ShardRow> add(Member m) {
    List<ShardRow> done = new ArrayList<>(1);
    if (!pack) {
      done.add(row(List.of(m)));
      return done;
    }
    boolean fits =
        open.isEmpty()
            || (open.get(0).split().equals(m.split())
                && openTokens + m.inputIds().length <= capacity);
    if (!fits) {
      done.add(row(open));
      open.clear();
      openTokens = 0;
    }
    open.add(m);
    openTokens += m.inputIds().length;
    return done;
  }

  /** The last, partly filled row, if any. */
  public List<ShardRow> finish() {
    List<ShardRow> done = new ArrayList<>(1);
    if (!open.isEmpty()) {
      done.add(row(open));
      open.clear();
      openTokens = 0;
    }
    return done;
  }

  static ShardRow row(List<Member> members) {
    int n = members.stream().mapToInt(m -> m.inputIds().length).sum();
    int[] ids = new int[n];
    int[] labels = new int[n];
    int[] segments = new int[n];
    int at = 0;
    int labelTokens = 0;
    for (int s = 0; s < members.size(); s++) {
      Member m = members.get(s);
      int len = m.inputIds().length;
      System.arraycopy(m.inputIds(), 0, ids, at, len);
      System.arraycopy(m.labels(), 0, labels, at, len);
      if (len > 0) {
        labels[at] = ShardSchema.IGNORE_INDEX;
      }
      Arrays.fill(segments, at, at + len, s + 1);
      for (int i = at; i < at + len; i++) {
        labelTokens += labels[i] != ShardSchema.IGNORE_INDEX ? 1 : 0;
      }
      at += len;
    }
    Member first = members.get(0);
    String id = members.size() == 1 ? first.exampleId() : packedId(members);
    return new ShardRow(
        id, first.split(), ids, labels, segments, labelTokens, members.size(), first.source());
  }

  private static String packedId(List<Member> members) {
    MessageDigest digest = Conversation.sha256();
    for (int i = 0; i < members.size(); i++) {
      if (i > 0) {
        digest.update((byte) ',');
      }
      digest.update(members.get(i).exampleId().getBytes(StandardCharsets.UTF_8));
    }
    return HexFormat.of().formatHex(digest.digest());
  }
}
