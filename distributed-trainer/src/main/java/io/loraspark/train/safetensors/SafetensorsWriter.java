package io.loraspark.train.safetensors;

import static io.loraspark.train.io.AtomicFiles.writeFully;

import com.fasterxml.jackson.core.JsonGenerator;
import io.loraspark.train.io.AtomicFiles;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/** Writes safetensors files: deterministic bytes, header space-padded to a multiple of 8. */
public final class SafetensorsWriter {

  /** Encoding buffer size; a multiple of every dtype size. */
  private static final int CHUNK_BYTES = 1 << 20;

  private SafetensorsWriter() {}

  /**
   * One tensor to write: float32 values in C order, stored as {@code dtype} (F16/BF16 rounded to
   * nearest even from the floats; F32 bit-exact, NaN payloads included).
   *
   * @param shape dims, e.g. [out, in]; copied in and out
   * @param data numel(shape) floats; not copied, so do not modify it until written
   * @param dtype the on-disk element type
   */
  public record Tensor(long[] shape, float[] data, DType dtype) {

    public Tensor {
      Objects.requireNonNull(shape, "shape");
      Objects.requireNonNull(data, "data");
      Objects.requireNonNull(dtype, "dtype");
      shape = shape.clone();
      long numel;
      try {
        numel = TensorInfo.numelOf(shape);
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " overflows", e);
      }
      if (numel != data.length) {
        throw new IllegalArgumentException(
            "shape "
                + Arrays.toString(shape)
                + " has "
                + numel
                + " elements but data has "
                + data.length);
      }
    }

    /** A tensor stored as F32. */
    public static Tensor f32(long[] shape, float[] data) {
      return new Tensor(shape, data, DType.F32);
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
      return shape.clone();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Tensor t
          && dtype == t.dtype
          && Arrays.equals(shape, t.shape)
          && Arrays.equals(data, t.data);
    }

    @Override
    public int hashCode() {
      return Objects.hash(dtype, Arrays.hashCode(shape), Arrays.hashCode(data));
    }

    @Override
    public String toString() {
      return "Tensor[" + dtype + " " + Arrays.toString(shape) + "]";
    }
  }

  /**
   * Writes atomically: to a temp file in the same directory, fsync, then atomic rename (then fsync
   * of the directory). On failure the temp file is removed and any existing {@code file} is left as
   * it was. The same arguments always produce the same bytes: tensors in the map's iteration order,
   * contiguous from offset 0; metadata (omitted if null or empty) sorted by key.
   *
   * @param tensors name to tensor; names must not be "__metadata__"
   * @param metadata e.g. {"format": "pt"}; null or empty for none
   * @throws IllegalArgumentException on an invalid name, null metadata entry, or a header over the
   *     safetensors limit of 100,000,000 bytes
   * @throws UncheckedIOException naming the file if writing, syncing or renaming fails
   */
  public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
    Objects.requireNonNull(file, "file");
    Objects.requireNonNull(tensors, "tensors");
    byte[] header = header(file, tensors, metadata == null ? Map.of() : metadata);
    AtomicFiles.write(
        file,
        ch -> {
          ByteBuffer len =
              ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length);
          writeFully(ch, len.flip());
          writeFully(ch, ByteBuffer.wrap(header));
          for (Tensor t : tensors.values()) {
            writeData(ch, t);
          }
        });
  }

  /** The header JSON, UTF-8, padded with spaces to a multiple of 8 bytes. */
  static byte[] header(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = StrictJson.MAPPER.getFactory().createGenerator(out)) {
      g.writeStartObject();
      if (!metadata.isEmpty()) {
        g.writeObjectFieldStart("__metadata__");
        for (Map.Entry<String, String> e : sortedMetadata(file, metadata).entrySet()) {
          g.writeStringField(e.getKey(), e.getValue());
        }
        g.writeEndObject();
      }
      long offset = 0;
      for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
        offset = writeEntry(g, file, e.getKey(), e.getValue(), offset);
      }
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot encode header: " + e, e);
    }
    int padded = (out.size() + 7) & ~7;
    if (padded > StrictJson.MAX_HEADER_BYTES) {
      throw new IllegalArgumentException(
          file
              + ": header would be "
              + padded
              + " bytes; safetensors allows at most "
              + StrictJson.MAX_HEADER_BYTES);
    }
    byte[] header = Arrays.copyOf(out.toByteArray(), padded);
    Arrays.fill(header, out.size(), padded, (byte) ' ');
    return header;
  }

  private static Map<String, String> sortedMetadata(Path file, Map<String, String> metadata) {
    TreeMap<String, String> sorted = new TreeMap<>();
    for (Map.Entry<String, String> e : metadata.entrySet()) {
      if (e.getKey() == null || e.getValue() == null) {
        throw new IllegalArgumentException(
            file
                + ": metadata keys and values must be non-null strings, got "
                + e.getKey()
                + "="
                + e.getValue());
      }
      sorted.put(e.getKey(), e.getValue());
    }
    return sorted;
  }

  /** Writes one header entry at {@code offset}; returns the offset after it. */
  private static long writeEntry(JsonGenerator g, Path file, String name, Tensor t, long offset)
      throws IOException {
    if (name == null || name.equals("__metadata__") || t == null) {
      throw new IllegalArgumentException(
          file
              + ": tensor '"
              + name
              + "': names must be non-null and not \"__metadata__\", tensors non-null");
    }
    long end = Math.addExact(offset, (long) t.data().length * t.dtype().bytes());
    g.writeObjectFieldStart(name);
    g.writeStringField("dtype", t.dtype().name());
    g.writeArrayFieldStart("shape");
    for (long d : t.shape) {
      g.writeNumber(d);
    }
    g.writeEndArray();
    g.writeArrayFieldStart("data_offsets");
    g.writeNumber(offset);
    g.writeNumber(end);
    g.writeEndArray();
    g.writeEndObject();
    return end;
  }

  /** Streams a tensor's elements little-endian through a bounded buffer. */
  private static void writeData(FileChannel ch, Tensor t) throws IOException {
    float[] d = t.data();
    int esize = t.dtype().bytes();
    int chunk = Math.max(1, Math.min(d.length, CHUNK_BYTES / esize));
    ByteBuffer buf = ByteBuffer.allocate(chunk * esize).order(ByteOrder.LITTLE_ENDIAN);
    int n;
    for (int off = 0; off < d.length; off += n) {
      n = Math.min(chunk, d.length - off);
      buf.clear();
      for (int i = off; i < off + n; i++) {
        switch (t.dtype()) {
          case F32 -> buf.putInt(Float.floatToRawIntBits(d[i]));
          case F16 -> buf.putShort(HalfFloats.floatToF16(d[i]));
          case BF16 -> buf.putShort(HalfFloats.floatToBf16(d[i]));
        }
      }
      writeFully(ch, buf.flip());
    }
  }
}
