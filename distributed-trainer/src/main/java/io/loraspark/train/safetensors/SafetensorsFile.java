package io.loraspark.train.safetensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One open .safetensors file; validated completely at open. Thread-safe reads.
 *
 * <p>Only the header is held on the heap. Tensor data is memory-mapped on demand, one region of at
 * most 1 GiB at a time, so files and tensors larger than 2 GiB work; each byte is read once per
 * {@link #readFloats} call. The file must not be modified while open.
 */
public final class SafetensorsFile implements AutoCloseable {

  /** Largest single mapping; a multiple of every dtype size, well under the 2 GiB map limit. */
  static final long MAX_MAP_BYTES = 1L << 30;

  /** Largest float[] the JVM reliably allocates. */
  private static final long MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;

  private final Path path;
  private final FileChannel channel;
  private final long dataStart;
  private final Map<String, String> metadata;
  private final Map<String, TensorInfo> tensors;
  private final List<String> names;
  private volatile boolean closed;

  private SafetensorsFile(Path path, FileChannel channel, SafetensorsHeader header) {
    this.path = path;
    this.channel = channel;
    this.dataStart = header.dataStart();
    this.metadata = header.metadata();
    Map<String, TensorInfo> byName = new LinkedHashMap<>();
    List<String> order = new ArrayList<>();
    for (TensorInfo t : header.tensors()) {
      byName.put(t.name(), t);
      order.add(t.name());
    }
    this.tensors = Collections.unmodifiableMap(byName);
    this.names = List.copyOf(order);
  }

  /**
   * Opens and fully validates {@code file}: header length, strict UTF-8 JSON, every entry, and that
   * the tensors cover the data section exactly.
   *
   * @throws IllegalArgumentException naming the file (and tensor) on any malformed input, or if it
   *     is not a regular file
   * @throws UncheckedIOException naming the file if it cannot be opened or read
   */
  public static SafetensorsFile open(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(
          file + ": not a regular file; expected a .safetensors file");
    }
    FileChannel ch;
    try {
      ch = FileChannel.open(file, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot open: " + e, e);
    }
    try {
      return new SafetensorsFile(file, ch, SafetensorsHeader.read(file, ch));
    } catch (RuntimeException | Error e) {
      try {
        ch.close();
      } catch (IOException closeError) {
        e.addSuppressed(closeError);
      }
      throw e;
    }
  }

  /** The path this file was opened from. */
  public Path path() {
    return path;
  }

  /** The {@code __metadata__} map (empty if absent), unmodifiable. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Tensor names in file order: by data offset, which is header order for usual writers. */
  public List<String> names() {
    return names;
  }

  /** Whether the file holds a tensor called {@code name}. */
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /**
   * The tensor's dtype, shape and offsets.
   *
   * @throws IllegalArgumentException "file: no tensor 'x'" if absent
   */
  public TensorInfo info(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) {
      throw new IllegalArgumentException(
          path + ": no tensor '" + name + "' (the file has " + tensors.size() + " tensors)");
    }
    return t;
  }

  /**
   * Reads a tensor as float32 in C order, shape {@link TensorInfo#shape()}; F16 and BF16 are
   * widened exactly.
   *
   * @throws IllegalArgumentException if absent, or if it has more elements than a float[] can hold
   * @throws IllegalStateException if this file is closed
   * @throws UncheckedIOException naming the file if mapping fails
   */
  public float[] readFloats(String name) {
    return readFloats(name, MAX_MAP_BYTES);
  }

  /** {@link #readFloats(String)} with mappings of at most {@code maxMapBytes}; for tests. */
  float[] readFloats(String name, long maxMapBytes) {
    TensorInfo t = info(name);
    if (closed) {
      throw new IllegalStateException(path + ": closed; cannot read tensor '" + name + "'");
    }
    long numel = t.numel();
    if (numel > MAX_ARRAY_LENGTH) {
      throw new IllegalArgumentException(
          String.format(
              "%s: tensor '%s' has %d elements; a float[] holds at most %d",
              path, name, numel, MAX_ARRAY_LENGTH));
    }
    int esize = t.dtype().bytes();
    long chunk = Math.max(1, maxMapBytes / esize);
    float[] out = new float[(int) numel];
    int n;
    for (long done = 0; done < numel; done += n) {
      n = (int) Math.min(chunk, numel - done);
      ByteBuffer region = map(t, dataStart + t.begin() + done * esize, (long) n * esize);
      decode(t.dtype(), region, out, (int) done, n);
    }
    return out;
  }

  private ByteBuffer map(TensorInfo t, long position, long length) {
    try {
      return channel
          .map(FileChannel.MapMode.READ_ONLY, position, length)
          .order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new UncheckedIOException(
          path + ": cannot map tensor '" + t.name() + "' bytes at " + position + ": " + e, e);
    }
  }

  /** Decodes {@code n} little-endian elements of {@code src} into {@code dst[off, off+n)}. */
  private static void decode(DType dtype, ByteBuffer src, float[] dst, int off, int n) {
    switch (dtype) {
      case F32 -> src.asFloatBuffer().get(dst, off, n);
      case F16 -> {
        ShortBuffer s = src.asShortBuffer();
        for (int i = 0; i < n; i++) {
          dst[off + i] = HalfFloats.f16ToFloat(s.get(i));
        }
      }
      case BF16 -> {
        ShortBuffer s = src.asShortBuffer();
        for (int i = 0; i < n; i++) {
          dst[off + i] = HalfFloats.bf16ToFloat(s.get(i));
        }
      }
    }
  }

  /** Closes the file; later reads throw. Idempotent. */
  @Override
  public void close() {
    closed = true;
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException(path + ": cannot close: " + e, e);
    }
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
  }
}
