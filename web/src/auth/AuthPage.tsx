/** Log in and sign up: one form, two modes. */
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, navigate } from "../router";
import { ErrorBox } from "../ui/ErrorBox";
import { useSession } from "./session";

export function AuthPage({ mode }: { mode: "login" | "signup" }) {
  const session = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const submit = useMutation({
    mutationFn: () => (mode === "login" ? session.logIn(email, password) : session.signUp(email, password)),
    onSuccess: () => {
      const next = new URLSearchParams(location.search).get("next");
      navigate(next?.startsWith("/") && !next.startsWith("//") ? next : "/strategies", { replace: true });
    },
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    submit.mutate();
  };
  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={onSubmit}>
        <h1>{mode === "login" ? "Log in to AlgoTrade" : "Create your AlgoTrade account"}</h1>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {submit.error && <ErrorBox error={submit.error} />}
        <button type="submit" className="primary" disabled={submit.isPending}>
          {submit.isPending ? "…" : mode === "login" ? "Log in" : "Sign up"}
        </button>
        {mode === "login" ? (
          <p>
            No account? <Link to="/signup">Sign up</Link>
          </p>
        ) : (
          <p>
            Have an account? <Link to="/login">Log in</Link>
          </p>
        )}
      </form>
    </div>
  );
}
