#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CThreadSupport

/// One closure run on a thread of its own, for a phase that two cores shorten. The thread
/// is always joined before the phase returns (`join`, or when the handle goes away), so
/// no work outlives the call that started it. It runs with the asynchronous signals
/// blocked, so they (SIGINT in Python) keep going to the caller's threads; faults
/// (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGSYS) are not blocked, so a crash
/// still reaches the process's crash handlers.
final class WorkerThread {
    /// The body, owned by the handle (released after the join, on the caller's thread).
    private final class Job: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// The worker's stack: its work is a flat loop.
    static let stackSize = 1 << 20

    private let thread: pthread_t
    private let job: Unmanaged<Job>
    private var joined = false

    private init(thread: pthread_t, job: Unmanaged<Job>) {
        self.thread = thread
        self.job = job
    }

    /// Whether a second thread can run at the same time: the calling thread may run on
    /// more than one CPU (a worker on a single CPU only competes with its caller).
    static let secondCPUAvailable: Bool = pmm_usable_cpu_count() >= 2

    /// Starts `body` on a new thread; nil when the system refuses one or there is a single
    /// CPU (the caller then does the work itself). `stackSize`: the thread's stack.
    static func start(stackSize: Int = WorkerThread.stackSize, _ body: @escaping () -> Void) -> WorkerThread? {
        guard secondCPUAvailable else { return nil }
        let job = Unmanaged.passRetained(Job(body))
        var attributes = pthread_attr_t()
        guard pthread_attr_init(&attributes) == 0 else {
            job.release()
            return nil
        }
        defer { pthread_attr_destroy(&attributes) }
        guard pthread_attr_setstacksize(&attributes, stackSize) == 0 else {
            job.release()
            return nil
        }
        var blocked = sigset_t(), previous = sigset_t()
        sigfillset(&blocked)
        for fault in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGSYS] { sigdelset(&blocked, fault) }
        pthread_sigmask(SIG_SETMASK, &blocked, &previous)
        #if canImport(Glibc)
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { argument in
            if let argument { Unmanaged<Job>.fromOpaque(argument).takeUnretainedValue().body() }
            return nil
        }, job.toOpaque())
        #else
        var created: pthread_t?
        let status = pthread_create(&created, &attributes, { argument in
            Unmanaged<Job>.fromOpaque(argument).takeUnretainedValue().body()
            return nil
        }, job.toOpaque())
        #endif
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        // No thread: nothing to join, and the handle glibc may have written is not one.
        guard status == 0 else {
            job.release()
            return nil
        }
        #if !canImport(Glibc)
        guard let thread = created else { return nil }
        #endif
        return WorkerThread(thread: thread, job: job)
    }

    /// Waits for the body to return.
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
        job.release()
    }

    deinit { join() }
}

/// A count that one thread raises as its results become ready, read by one thread that
/// consumes them: every result below the count read is fully written. The waiter spins
/// briefly, then sleeps until the count reaches what it waits for (a long wait, such as for
/// the parents of millions of spans or a worker the system runs late, leaves the core to
/// other work). Raising the count wakes the waiter only when it sleeps and the count now
/// reaches its target: a wake-up is a system call (and, in a virtual machine, an
/// interrupt to the other CPU), too dear to make for every result. Either side can ask
/// the other to stop, which wakes it.
final class PublishedCount {
    /// How long a waiter spins before it sleeps, by default.
    static let spinNanoseconds = 100_000
    /// How long a waiter of this count spins before it sleeps (0: it sleeps at once).
    private let spinNanoseconds: Int
    private let value = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    private let stop = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    /// The count the sleeping waiter waits for (0: none sleeps). Set and cleared under `mutex`.
    private let sleeperTarget = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let moved = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// `spinNanoseconds` 0 for a waiter that is usually ahead: it sleeps at once, leaving
    /// the core to other threads (a spinning waiter takes it from them).
    init(spinNanoseconds: Int = PublishedCount.spinNanoseconds) {
        self.spinNanoseconds = spinNanoseconds
        value.initialize(to: 0)
        stop.initialize(to: 0)
        sleeperTarget.initialize(to: 0)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(moved, nil)
    }

    deinit {
        pthread_cond_destroy(moved)
        pthread_mutex_destroy(mutex)
        value.deallocate()
        stop.deallocate()
        sleeperTarget.deallocate()
        mutex.deallocate()
        moved.deallocate()
    }

    /// Results `0 ..< count` are ready (count never decreases).
    @inline(__always)
    func publish(_ count: Int) {
        // Stored, then the sleeper looked for, both in the total order: a waiter stores its
        // target, then loads the count, so one of the two sees the other (see `sleep`).
        pmm_store_seq_cst(value, count)
        let target = pmm_load_seq_cst(sleeperTarget)
        if target != 0 && count >= target { wakeWaiter() }
    }

    /// How many results are ready now.
    @inline(__always)
    var current: Int { pmm_load_acquire(value) }

    /// Waits until at least `count` (>= 1) results are ready or a stop is requested; returns
    /// how many are ready (less than `count` only after a stop).
    @inline(__always)
    func wait(atLeast count: Int) -> Int {
        let ready = pmm_load_acquire(value)
        if ready >= count { return ready }
        return waitLonger(count)
    }

    private func waitLonger(_ count: Int) -> Int {
        // Spin up to about `spinNanoseconds` first: waits between the two threads of a
        // phase are usually shorter than a sleep and a wake-up.
        var started = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        while true {
            for _ in 0..<64 {
                let ready = pmm_load_acquire(value)
                if ready >= count || stopRequested { return ready }
                pmm_cpu_relax()
            }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let elapsed = (now.tv_sec - started.tv_sec) * 1_000_000_000 + (now.tv_nsec - started.tv_nsec)
            if elapsed >= spinNanoseconds { break }
        }
        return sleep(until: count)
    }

    /// Sleeps until the count reaches `count` or a stop is requested. The target is stored
    /// before the count is read again, under the mutex, which the publisher takes to wake:
    /// a publisher that raised the count past the target before it was stored is seen
    /// here; one that raises it after sees the target and waits for the mutex, which this
    /// thread holds until it sleeps.
    private func sleep(until count: Int) -> Int {
        pthread_mutex_lock(mutex)
        pmm_store_seq_cst(sleeperTarget, Swift.max(count, 1))
        var ready = pmm_load_seq_cst(value)
        while ready < count && !stopRequested {
            pthread_cond_wait(moved, mutex)
            ready = pmm_load_seq_cst(value)
        }
        pmm_store_seq_cst(sleeperTarget, 0)
        pthread_mutex_unlock(mutex)
        return ready
    }

    /// Asks the other side to stop early (it failed, or needs nothing more), waking it.
    func requestStop() {
        pmm_store_seq_cst(stop, 1)
        wakeWaiter()
    }

    /// Whether a stop was requested.
    @inline(__always)
    var stopRequested: Bool { pmm_load_acquire(stop) != 0 }

    /// Taking the mutex means a waiter that announced itself is asleep (or has seen the
    /// count or the stop), so the broadcast, made once the mutex is free again (the woken
    /// waiter does not then block on it), is not lost.
    private func wakeWaiter() {
        pthread_mutex_lock(mutex)
        pthread_mutex_unlock(mutex)
        pthread_cond_broadcast(moved)
    }
}
