package io.loraspark.train.safetensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Hand-crafts safetensors bytes, valid or not, for tests. */
final class RawSafetensors {

  private RawSafetensors() {}

  /**
   * Writes u64 LE length of {@code headerJson}, the header as UTF-8, then {@code dataBytes} zeros.
   */
  static Path write(Path file, String headerJson, int dataBytes) throws IOException {
    byte[] header = headerJson.getBytes(StandardCharsets.UTF_8);
    return write(file, header.length, header, new byte[dataBytes]);
  }

  /** Writes {@code declaredLength} as u64 LE, then {@code header}, then {@code data}, verbatim. */
  static Path write(Path file, long declaredLength, byte[] header, byte[] data) throws IOException {
    ByteBuffer buf =
        ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    buf.putLong(declaredLength).put(header).put(data);
    Files.write(file, buf.array());
    return file;
  }

  /** One tensor entry's JSON. */
  static String entry(String name, String dtype, String shape, long begin, long end) {
    return String.format(
        "\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%d,%d]}",
        name, dtype, shape, begin, end);
  }
}
