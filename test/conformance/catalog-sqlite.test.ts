import { sqliteCatalogHarness } from "../support/catalog-sqlite.js";
import { catalogConformance } from "./catalog.suite.js";

// A fresh database file per run; every open() is a new connection to it.
catalogConformance("sqlite", sqliteCatalogHarness);
