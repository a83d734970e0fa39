// The app's entry: the screens register their routes, then the router draws the current one.
import "./app.css";
import { start } from "./ui/router.js";
import { installWorker } from "./ui/install.js";

start();
// Only in a build: the dev server has no /app/sw.js.
if (import.meta.env.PROD) installWorker();
