/**
 * Real-world shaped RFC 5322 messages for the mail tests, as raw bytes: Japanese text is given
 * as base64 of its encoded bytes (ISO-2022-JP, Shift_JIS, EUC-JP, UTF-8), never re-encoded here,
 * so a test reads back exactly what a mail server would have delivered.
 */

const CRLF = "\r\n";
const b64 = (s: string) => Buffer.from(s, "base64");
const ascii = (lines: string[]) => Buffer.from(lines.join(CRLF), "latin1");

/** A message of header lines and a body (bytes), joined with CRLF. */
export function mail(headers: string[], body: Buffer | string = "Hello.\r\n"): Buffer {
  return Buffer.concat([
    ascii([...headers, "", ""]),
    typeof body === "string" ? Buffer.from(body, "latin1") : body,
  ]);
}

/** 会議の議事録 in ISO-2022-JP; body 東京で会議があります。資料を添付します。 */
export const ISO_2022_JP = mail(
  [
    "From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <tanaka@example.jp>",
    "To: suzuki@example.jp",
    "Subject: =?ISO-2022-JP?B?GyRCMnE1RCRONUQ7dk8/GyhC?=",
    "Date: Tue, 01 Dec 2026 09:00:00 +0900",
    "Message-ID: <jis-1@example.jp>",
    "MIME-Version: 1.0",
    'Content-Type: text/plain; charset="ISO-2022-JP"',
    "Content-Transfer-Encoding: 7bit",
  ],
  b64("GyRCRWw1fiRHMnE1RCQsJCIkaiReJDkhIztxTkEkckU6SVUkNyReJDkhIxsoQg0K"),
);
/** The From name of ISO_2022_JP (田中) and its subject. */
export const ISO_2022_JP_FROM_NAME = "田中";
export const ISO_2022_JP_SUBJECT = "会議の議事録";

/** 見積書 as a Q-encoded Shift_JIS subject; body 大阪支店の見積書です。 in Shift_JIS, 8bit. */
export const SHIFT_JIS = mail(
  [
    "From: sales@example.jp",
    "To: buyer@example.com",
    "Subject: =?Shift_JIS?Q?=8C=A9=90=CF=8F=91?=",
    "Date: Wed, 02 Dec 2026 10:00:00 +0900",
    "Message-ID: <sjis-1@example.jp>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=Shift_JIS",
    "Content-Transfer-Encoding: 8bit",
  ],
  b64("keWN4454k1iCzIypkM+PkYLFgreBQg0K"),
);

/** A B-encoded UTF-8 subject (横浜の中華街) over an EUC-JP body (名古屋の天気は晴れです。). */
export const EUC_JP = mail(
  [
    "From: weather@example.jp",
    "To: a@example.com",
    "Subject: =?UTF-8?B?5qiq5rWc44Gu5Lit6I+v6KGX?=",
    "Date: Thu, 03 Dec 2026 08:00:00 +0900",
    "Message-ID: <euc-1@example.jp>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=EUC-JP",
    "Content-Transfer-Encoding: 8bit",
  ],
  b64("zL64xbKwpM7Ft7WkpM/AsqTspMekuaGjDQo="),
);

/** A Q-encoded UTF-8 subject (札幌の雪まつり) over a quoted-printable UTF-8 body. */
export const UTF8_QP = mail(
  [
    "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>",
    "To: team@example.com",
    "Cc: Boss <boss@example.com>",
    "Subject: =?UTF-8?Q?=E6=9C=AD=E5=B9=8C=E3=81=AE=E9=9B=AA=E3=81=BE=E3=81=A4=E3=82=8A?=",
    "Date: Fri, 04 Dec 2026 12:00:00 +0100",
    "Message-ID: <utf8-1@example.de>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=UTF-8",
    "Content-Transfer-Encoding: quoted-printable",
  ],
  "Gr=C3=BC=C3=9Fe aus M=C3=BCnchen, das Treffen ist am Montag.\r\n",
);

/** multipart/alternative (text + HTML), no attachment. */
export const ALTERNATIVE = mail(
  [
    "From: Alice <alice@example.com>",
    "To: Bob <bob@example.com>",
    "Subject: Quarterly roadmap",
    "Date: Mon, 30 Nov 2026 15:04:05 +0000",
    "Message-ID: <alt-1@example.com>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="alt-boundary"',
  ],
  [
    "--alt-boundary",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "The roadmap covers pineapple logistics.",
    "--alt-boundary",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<html><body><p>The roadmap covers <b>pineapple</b> logistics.</p></body></html>",
    "--alt-boundary--",
    "",
  ].join(CRLF),
);

/** The PDF-ish bytes attached to WITH_ATTACHMENTS (base64 in the message). */
export const ATTACHMENT_BYTES = Buffer.from(
  "%PDF-1.4\n% not really a PDF, but bytes all the same\n\u0000\u0001\u0002",
  "latin1",
);
/** A 1×1 PNG, inline (cid:logo@example.com) in WITH_ATTACHMENTS. */
export const PNG_BYTES = b64(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
);

/** multipart/mixed with a related HTML part, an inline image (cid) and a PDF attachment. */
export const WITH_ATTACHMENTS = mail(
  [
    "From: Carol <carol@example.com>",
    "To: Dave <dave@example.com>",
    "Subject: Invoice with logo",
    "Date: Tue, 01 Dec 2026 11:00:00 +0000",
    "Message-ID: <att-1@example.com>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="mixed"',
  ],
  [
    "--mixed",
    'Content-Type: multipart/related; boundary="rel"',
    "",
    "--rel",
    "Content-Type: text/html; charset=utf-8",
    "",
    '<p>See the invoice. <img src="cid:logo@example.com"></p>',
    "--rel",
    "Content-Type: image/png",
    "Content-Transfer-Encoding: base64",
    "Content-ID: <logo@example.com>",
    "Content-Disposition: inline; filename=logo.png",
    "",
    PNG_BYTES.toString("base64"),
    "--rel--",
    "--mixed",
    'Content-Type: application/pdf; name="invoice.pdf"',
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="=?UTF-8?B?6KuL5rGC5pu4LnBkZg==?="',
    "",
    ATTACHMENT_BYTES.toString("base64"),
    "--mixed--",
    "",
  ].join(CRLF),
);
/** The decoded filename of the PDF attachment (請求書.pdf). */
export const ATTACHMENT_FILENAME = "請求書.pdf";

/** Malformed but acceptable: no Date, no Message-ID, a broken encoded word, an unknown charset. */
export const MALFORMED = mail(
  [
    "From: someone@example.com",
    "To: x@example.com",
    "Subject: =?x-unknown-charset?B?!!!not base64?=",
    'Content-Type: text/plain; charset="x-unknown-charset"',
  ],
  "body text with the word marmalade\r\n",
);

/** A reply to ALTERNATIVE by In-Reply-To and References. */
export const REPLY = mail(
  [
    "From: Bob <bob@example.com>",
    "To: Alice <alice@example.com>",
    "Subject: Re: Quarterly roadmap",
    "Date: Mon, 30 Nov 2026 16:00:00 +0000",
    "Message-ID: <alt-2@example.com>",
    "In-Reply-To: <alt-1@example.com>",
    "References: <alt-1@example.com>",
  ],
  "Sounds good.\r\n",
);

/** A reply to REPLY by In-Reply-To alone (no References). */
export const REPLY_TO_REPLY = mail(
  [
    "From: Alice <alice@example.com>",
    "To: Bob <bob@example.com>",
    "Subject: Re: Re: Quarterly roadmap",
    "Date: Mon, 30 Nov 2026 17:00:00 +0000",
    "Message-ID: <alt-3@example.com>",
    "In-Reply-To: <alt-2@example.com>",
  ],
  "Great.\r\n",
);

/** A plain message of about `size` bytes, with its own Message-ID. */
export function plain(n: number, size = 200): Buffer {
  const head = mail([
    `From: bulk${n}@example.com`,
    "To: inbox@example.com",
    `Subject: Message number ${n}`,
    "Date: Sat, 05 Dec 2026 00:00:00 +0000",
    `Message-ID: <plain-${n}@example.com>`,
  ]);
  return Buffer.concat([head, Buffer.alloc(Math.max(0, size - head.length), "x"), Buffer.from(CRLF)]);
}
