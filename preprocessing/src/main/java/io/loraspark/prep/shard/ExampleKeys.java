package io.loraspark.prep.shard;

import io.loraspark.prep.schema.Conversation;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * Where an example goes, derived only from the root seed and its id, so the result does not depend
 * on input partitioning, executor count or row order.
 *
 * <p>{@code h = SHA-256(seed as 8 big-endian bytes ‖ UTF-8 example_id)}; bytes 0..7 as an unsigned
 * 53-bit fraction {@code u = (h[0..8] >>> 11) / 2^53} put the example in eval iff {@code u <
 * evalFraction}; bytes 8..15 modulo the shard count pick its shard; bytes 16..23 (signed) order it
 * within its shard and split (a seeded shuffle).
 *
 * @param eval whether the example is held out
 * @param shard shard index in [0, shards)
 * @param order sort key within the shard
 */
public record ExampleKeys(boolean eval, int shard, long order) {

  /**
   * @param seed root seed
   * @param exampleId the example id
   * @param evalFraction fraction held out, in [0, 1)
   * @param shards number of shards, >= 1
   */
  public static ExampleKeys of(long seed, String exampleId, double evalFraction, int shards) {
    MessageDigest digest = Conversation.sha256();
    digest.update(ByteBuffer.allocate(Long.BYTES).putLong(seed).array());
    ByteBuffer h = ByteBuffer.wrap(digest.digest(exampleId.getBytes(StandardCharsets.UTF_8)));
    double u = (h.getLong(0) >>> 11) * 0x1.0p-53;
    int shard = (int) Math.floorMod(h.getLong(8), (long) shards);
    return new ExampleKeys(u < evalFraction, shard, h.getLong(16));
  }

  /** {@link ShardSchema#EVAL} or {@link ShardSchema#TRAIN}. */
  public String split() {
    return eval ? ShardSchema.EVAL : ShardSchema.TRAIN;
  }
}
