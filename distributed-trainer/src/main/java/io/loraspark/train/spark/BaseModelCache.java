package io.loraspark.train.spark;

import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One frozen base model per executor JVM, shared read-only by every task and adapter in it: loaded
 * on first use and kept, keyed by the checkpoint directory and a content hash (config.json, the
 * safetensors headers and the file sizes: cheap to compute and different for any other checkpoint),
 * so a changed checkpoint at the same path is loaded afresh. Never serialized into a closure.
 */
public final class BaseModelCache {
  private static final Logger LOG = LoggerFactory.getLogger(BaseModelCache.class);
  private static final ConcurrentHashMap<String, Transformer> MODELS = new ConcurrentHashMap<>();

  private BaseModelCache() {}

  /** The model in {@code dir}, loading it in FP32 if this JVM has not yet. */
  public static Transformer get(Path dir) {
    return get(dir, BaseQuant.NONE);
  }

  /**
   * The model in {@code dir} with its projections stored as {@code quant} (one copy per JVM for
   * each checkpoint and mode), loading it if this JVM has not yet.
   */
  public static Transformer get(Path dir, BaseQuant quant) {
    return get(dir, quant, Precision.FP32);
  }

  /**
   * The training model in {@code dir} with its projections stored as {@code quant} and its frozen
   * GEMMs in {@code precision} resolved on this executor ({@link Precision#model}): in bf16 a base
   * of its own, packed and without fp32 projection arrays, next to any fp32 copy that scoring or
   * decoding in the same JVM loaded.
   */
  public static Transformer get(Path dir, BaseQuant quant, Precision precision) {
    Precision resolved = precision.resolve(quant != BaseQuant.NONE);
    String key =
        dir.toAbsolutePath().normalize()
            + "#"
            + contentHash(dir)
            + "#"
            + quant.key()
            + (resolved == Precision.BF16 ? "#bf16" : "");
    return MODELS.computeIfAbsent(
        key,
        k -> {
          io.loraspark.train.io.FaultPoints.reach(io.loraspark.train.io.FaultPoints.BASE_LOAD);
          long t0 = System.nanoTime();
          ModelWeights w = CheckpointLoader.load(dir, quant);
          LOG.info(
              "loaded base model {} ({}: {} bytes of linear weights, {} in all) in {} ms",
              dir,
              quant.key(),
              w.linearBytes(),
              w.totalBytes(),
              (System.nanoTime() - t0) / 1_000_000);
          return resolved.model(w);
        });
  }

  /** How many distinct base models this JVM holds (for tests and logs). */
  public static int size() {
    return MODELS.size();
  }

  /** SHA-256 over config.json, any safetensors index, and each safetensors file's size + header. */
  public static String contentHash(Path dir) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      List<Path> files;
      try (Stream<Path> s = Files.list(dir)) {
        files =
            s.filter(
                    p -> {
                      String n = p.getFileName().toString();
                      return n.equals("config.json")
                          || n.endsWith(".safetensors")
                          || n.endsWith(".safetensors.index.json");
                    })
                .sorted()
                .toList();
      }
      for (Path f : files) {
        md.update(f.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        if (f.toString().endsWith(".safetensors")) {
          md.update(header(f));
        } else {
          try (InputStream in = Files.newInputStream(f)) {
            md.update(in.readAllBytes());
          }
        }
      }
      return HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read model directory " + dir + ": " + e, e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** File size + the JSON header of a safetensors file (bounded to its 100 MB header limit). */
  private static byte[] header(Path f) throws IOException {
    try (FileChannel ch = FileChannel.open(f)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      ch.read(len, 0);
      len.flip();
      long n = len.remaining() == 8 ? len.getLong() : 0;
      n = Math.max(0, Math.min(n, Math.min(100_000_000L, ch.size() - 8)));
      ByteBuffer head = ByteBuffer.allocate((int) n + 8).order(ByteOrder.LITTLE_ENDIAN);
      head.putLong(ch.size());
      ch.read(head, 8);
      return head.array();
    }
  }
}
