package io.loraspark.prep.read;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Strict UTF-8 decoding that reports where the first invalid byte is. Not thread-safe. */
final class Utf8 {

  private final CharsetDecoder decoder =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT);

  /** Result of decoding: the text, or the byte offset of the first invalid sequence. */
  record Decoded(String text, int badOffset) {
    boolean valid() {
      return badOffset < 0;
    }
  }

  /** Decodes {@code bytes[offset, offset+length)}; invalid input gives a lossy text. */
  Decoded decode(byte[] bytes, int offset, int length) {
    ByteBuffer in = ByteBuffer.wrap(bytes, offset, length);
    CharBuffer out = CharBuffer.allocate(length);
    decoder.reset();
    CoderResult result = decoder.decode(in, out, true);
    if (!result.isError()) {
      result = decoder.flush(out);
    }
    if (result.isError()) {
      String lossy = new String(bytes, offset, length, StandardCharsets.UTF_8);
      return new Decoded(lossy, in.position() - offset);
    }
    return new Decoded(out.flip().toString(), -1);
  }
}
