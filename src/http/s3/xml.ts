/**
 * XML in and out of the S3 endpoint (fast-xml-parser): documents built from plain objects, and
 * the few request bodies S3 has (DeleteObjects, CompleteMultipartUpload) parsed with a size
 * limit, no DTDs and no entity expansion beyond XML's own.
 */
import { XMLBuilder, XMLParser } from "fast-xml-parser";
import { KuraError } from "../../core/errors.js";

export const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

const builder = new XMLBuilder({ ignoreAttributes: false, suppressEmptyNode: false, processEntities: true });

/** `{Root: {...}}` as an XML document (the root gets S3's namespace, but for `Error`). */
export function xml(doc: Record<string, unknown>): string {
  const [root] = Object.keys(doc) as [string];
  // S3's error documents carry no namespace (botocore finds <Code> only without one).
  const body = root === "Error" ? doc[root] : { "@_xmlns": S3_NS, ...(doc[root] as Record<string, unknown>) };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: body })}`;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => name === "Part" || name === "Object",
});

/** The largest XML request body read (DeleteObjects of 1,000 keys of 1,024 bytes fits). */
export const MAX_XML_BYTES = 2 * 1024 * 1024;

/** Parses a request body that must be the XML element `root`. */
export function parseXml(text: string, root: string): Record<string, unknown> {
  const invalid = () =>
    new KuraError(
      "S3_REQUEST_INVALID",
      `The XML you provided was not well-formed or did not validate against our published schema (${root})`,
      { operation: "s3.xml", context: { s3Code: "MalformedXML" } },
    );
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw invalid();
  let doc: unknown;
  try {
    doc = parser.parse(text, true);
  } catch {
    throw invalid();
  }
  const top = (doc as Record<string, unknown> | undefined)?.[root];
  if (typeof top !== "object" || top === null) throw invalid();
  return top as Record<string, unknown>;
}
