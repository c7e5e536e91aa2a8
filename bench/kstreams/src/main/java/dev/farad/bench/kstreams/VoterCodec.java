package dev.farad.bench.kstreams;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;

/**
 * Voter's values in Avro single-object encoding ({@code C3 01}, the schema's CRC-64-AVRO
 * fingerprint little-endian, the Avro binary body), decoded and encoded by hand: the bodies are
 * two or three fields, and farad does the same work with avsc's generated code. {@link #selfCheck}
 * compares both directions with Avro's own BinaryMessageEncoder/Decoder at start.
 */
final class VoterCodec {
  static final int HEADER = 10;

  final Schema vote;
  final Schema accepted;
  final Schema rejected;
  private final byte[] voteHeader;
  private final byte[] acceptedHeader;
  private final byte[] rejectedHeader;
  final int invalidContestant;
  final int overVoteLimit;

  VoterCodec(File schemaDir) throws IOException {
    vote = new Schema.Parser().parse(new File(schemaDir, "Vote.avsc"));
    accepted = new Schema.Parser().parse(new File(schemaDir, "VoteAccepted.avsc"));
    rejected = new Schema.Parser().parse(new File(schemaDir, "VoteRejected.avsc"));
    voteHeader = header(vote);
    acceptedHeader = header(accepted);
    rejectedHeader = header(rejected);
    Schema reason = rejected.getField("reason").schema();
    invalidContestant = reason.getEnumOrdinal("INVALID_CONTESTANT");
    overVoteLimit = reason.getEnumOrdinal("OVER_VOTE_LIMIT");
    // The hand-written bodies below assume these field orders and types.
    expectFields(vote, "phoneNumber:LONG", "contestantNumber:INT");
    expectFields(accepted, "phoneNumber:LONG", "contestantNumber:INT", "state:STRING");
    expectFields(rejected, "phoneNumber:LONG", "contestantNumber:INT", "reason:ENUM");
  }

  private static byte[] header(Schema schema) {
    return ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN)
        .put((byte) 0xC3).put((byte) 0x01)
        .putLong(SchemaNormalization.parsingFingerprint64(schema))
        .array();
  }

  private static void expectFields(Schema schema, String... fields) {
    String[] actual = schema.getFields().stream().map(f -> f.name() + ":" + f.schema().getType()).toArray(String[]::new);
    if (!Arrays.equals(actual, fields)) {
      throw new IllegalStateException(schema.getFullName() + ": expected fields " + Arrays.toString(fields) + ", got " + Arrays.toString(actual));
    }
  }

  /** A decoded vote; one per processor, reused. */
  static final class Vote {
    long phoneNumber;
    int contestantNumber;
  }

  /** Decodes a single-object voter.Vote into {@code out}; throws on any other value. */
  void decodeVote(byte[] bytes, Vote out) {
    if (bytes == null || bytes.length < HEADER + 2 || !Arrays.equals(bytes, 0, HEADER, voteHeader, 0, HEADER)) {
      throw new IllegalArgumentException("not a voter.Vote single object");
    }
    int pos = HEADER;
    // phoneNumber: zigzag varint long
    long raw = 0;
    int shift = 0;
    byte b;
    do {
      b = bytes[pos++];
      raw |= (long) (b & 0x7F) << shift;
      shift += 7;
    } while (b < 0);
    out.phoneNumber = (raw >>> 1) ^ -(raw & 1);
    // contestantNumber: zigzag varint int
    int rawInt = 0;
    shift = 0;
    do {
      b = bytes[pos++];
      rawInt |= (b & 0x7F) << shift;
      shift += 7;
    } while (b < 0);
    out.contestantNumber = (rawInt >>> 1) ^ -(rawInt & 1);
  }

  /** VoteAccepted; {@code state} is the UTF-8 of the state code. */
  byte[] encodeAccepted(long phoneNumber, int contestantNumber, byte[] state) {
    byte[] buf = new byte[HEADER + 10 + 5 + 5 + state.length];
    System.arraycopy(acceptedHeader, 0, buf, 0, HEADER);
    int pos = writeLong(buf, HEADER, phoneNumber);
    pos = writeLong(buf, pos, contestantNumber);
    pos = writeLong(buf, pos, state.length);
    System.arraycopy(state, 0, buf, pos, state.length);
    return Arrays.copyOf(buf, pos + state.length);
  }

  byte[] encodeRejected(long phoneNumber, int contestantNumber, int reasonOrdinal) {
    byte[] buf = new byte[HEADER + 10 + 5 + 5];
    System.arraycopy(rejectedHeader, 0, buf, 0, HEADER);
    int pos = writeLong(buf, HEADER, phoneNumber);
    pos = writeLong(buf, pos, contestantNumber);
    pos = writeLong(buf, pos, reasonOrdinal);
    return Arrays.copyOf(buf, pos);
  }

  /** Zigzag varint; an Avro int is written the same way as a long of the same value. */
  private static int writeLong(byte[] buf, int pos, long value) {
    long n = (value << 1) ^ (value >> 63);
    while ((n & ~0x7FL) != 0) {
      buf[pos++] = (byte) ((n & 0x7F) | 0x80);
      n >>>= 7;
    }
    buf[pos++] = (byte) n;
    return pos;
  }

  /** Round trips against Avro's own single-object encoder and decoder; throws on a difference. */
  void selfCheck() throws IOException {
    GenericRecord v = new GenericData.Record(vote);
    v.put("phoneNumber", 9_899_999_999L);
    v.put("contestantNumber", 6);
    Vote decoded = new Vote();
    decodeVote(toBytes(new BinaryMessageEncoder<GenericRecord>(GenericData.get(), vote).encode(v)), decoded);
    check(decoded.phoneNumber == 9_899_999_999L && decoded.contestantNumber == 6, "Vote decode");

    BinaryMessageDecoder<GenericRecord> acceptedDecoder = new BinaryMessageDecoder<>(GenericData.get(), accepted);
    GenericRecord a = acceptedDecoder.decode(encodeAccepted(2_015_551_234L, 3, "NJ".getBytes(StandardCharsets.UTF_8)));
    check(a.get("phoneNumber").equals(2_015_551_234L) && a.get("contestantNumber").equals(3) && a.get("state").toString().equals("NJ"), "VoteAccepted encode");

    BinaryMessageDecoder<GenericRecord> rejectedDecoder = new BinaryMessageDecoder<>(GenericData.get(), rejected);
    GenericRecord r = rejectedDecoder.decode(encodeRejected(-1L, 9, overVoteLimit));
    check(r.get("phoneNumber").equals(-1L) && r.get("contestantNumber").equals(9) && r.get("reason").toString().equals("OVER_VOTE_LIMIT"), "VoteRejected encode");
  }

  private static byte[] toBytes(ByteBuffer buffer) {
    byte[] out = new byte[buffer.remaining()];
    buffer.get(out);
    return out;
  }

  private static void check(boolean ok, String what) {
    if (!ok) throw new IllegalStateException("codec self-check failed: " + what);
  }

  /** Area code → UTF-8 state, as an array over 0..999 (Voter's area codes are three digits). */
  static byte[][] stateTable(Map<Integer, String> areaCodes) {
    byte[][] table = new byte[1000][];
    for (Map.Entry<Integer, String> e : areaCodes.entrySet()) {
      if (e.getKey() >= 0 && e.getKey() < 1000) table[e.getKey()] = e.getValue().getBytes(StandardCharsets.UTF_8);
    }
    return table;
  }
}
