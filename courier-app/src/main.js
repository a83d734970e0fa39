// The app's entry: the screens register their routes, then the router draws the current one.
import "./app.css";
import { start } from "./ui/router.js";
import "./ui/screens/shift.js";
import "./ui/screens/checklist.js";
import "./ui/screens/violations.js";

start();
