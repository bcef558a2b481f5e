package io.loraspark.prep.schema;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The normalized form every record format maps onto: an optional system turn, then user and
 * assistant turns alternating, starting with user and ending with assistant.
 *
 * @param turns the turns in order
 */
public record Conversation(List<Turn> turns) implements Serializable {

  private static final JsonFactory JSON = new JsonFactory();

  /**
   * Validates the turn order.
   *
   * @throws RowRejection ({@link RejectReason#INVALID_CONVERSATION}) if the order is not system?,
   *     (user, assistant)+
   */
  public Conversation {
    turns = List.copyOf(turns);
    int start = !turns.isEmpty() && turns.get(0).role() == Role.SYSTEM ? 1 : 0;
    if (turns.size() - start < 2) {
      throw new RowRejection(
          RejectReason.INVALID_CONVERSATION,
          "a conversation needs at least one user turn followed by an assistant turn");
    }
    for (int i = start; i < turns.size(); i++) {
      Role expected = (i - start) % 2 == 0 ? Role.USER : Role.ASSISTANT;
      if (turns.get(i).role() != expected) {
        throw new RowRejection(
            RejectReason.INVALID_CONVERSATION,
            "turn "
                + (i + 1)
                + " is "
                + turns.get(i).role().jinjaName()
                + " but must be "
                + expected.jinjaName()
                + " (expected: optional system, then user/assistant alternating, ending with"
                + " assistant)");
      }
    }
    if (turns.size() % 2 != (start == 1 ? 1 : 0)) {
      throw new RowRejection(
          RejectReason.INVALID_CONVERSATION, "the last turn must be an assistant turn");
    }
  }

  /** A single instruction/response pair, with optional context. */
  public static Conversation single(String instruction, String context, String response) {
    return new Conversation(
        List.of(new Turn(Role.USER, instruction, context), Turn.of(Role.ASSISTANT, response)));
  }

  /**
   * The example id: lower-case SHA-256 hex of the canonical JSON {@code [[role, content, context],
   * ...]} of the turns. Equal conversations (same roles and exact texts, whatever the source
   * format) have equal ids; this is the exact-duplicate key.
   */
  public String exampleId() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (JsonGenerator gen = JSON.createGenerator(bytes)) {
      gen.writeStartArray();
      for (Turn t : turns) {
        gen.writeStartArray();
        gen.writeString(t.role().jinjaName());
        gen.writeString(t.content());
        gen.writeString(t.context());
        gen.writeEndArray();
      }
      gen.writeEndArray();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot serialize a conversation to JSON in memory", e);
    }
    return HexFormat.of().formatHex(sha256().digest(bytes.toByteArray()));
  }

  /** A fresh SHA-256 digest. */
  public static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JVM lacks SHA-256, which every Java SE must provide", e);
    }
  }
}
