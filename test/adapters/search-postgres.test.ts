import { describe, expect, it } from "vitest";
import { tsqueryLiteral, tsvectorLiteral } from "../../src/adapters/search/postgres-fts/index.js";

describe("postgres tsvector/tsquery literals", () => {
  it("quotes tokens and builds phrases of bigrams", () => {
    expect(tsvectorLiteral("雨 rain")).toBe("'雨':1 'rain':2");
    expect(tsqueryLiteral("東京都 rain")).toBe("('東京' <-> '京都') & 'rain'");
    expect(tsqueryLiteral("it's")).toBe("'its'");
    expect(tsqueryLiteral("... ")).toBeUndefined();
  });
});
