import { testKura } from "../support/kura.js";
import { messagesSuite } from "./messages.suite.js";

messagesSuite("SQLite + fs", () => testKura("sqlite"));
